// `ufs completion bash|zsh`: shell completion generated from the command tree itself, so every
// command a family registers (and its options) completes without a hand-kept list.
//   bash: source <(ufs completion bash)      zsh: source <(ufs completion zsh)
import type { Command, Option } from 'commander';
import { Argument } from './commander.js';
import { UfsError } from '../common/errors.js';
import { out } from './output.js';

interface Node {
  path: string; // 'image ls'
  subs: { name: string; description: string }[];
  options: string[]; // every flag spelling
  valueOptions: string[]; // the flags that take a value
  operand: '' | 'images' | 'volumes'; // what its operands name, when ufs can list them
  choices: string[]; // the values its first operand takes, when fixed
}

const visible = (c: Command) => !(c as unknown as { _hidden?: boolean })._hidden;

function flagsOf(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => !!f);
}

function walk(cmd: Command, prefix: string, nodes: Node[]): void {
  const options = cmd.options.filter((o) => !o.hidden);
  const help = ['--help', ...(cmd.parent ? [] : ['-h'])];
  const args = cmd.registeredArguments;
  nodes.push({
    path: prefix,
    subs: cmd.commands.filter(visible).flatMap((c) => [c.name(), ...c.aliases()].map((name) => ({ name, description: c.description().split('\n')[0]! }))),
    options: [...options.flatMap(flagsOf), ...help],
    valueOptions: options.filter((o) => o.required || o.optional).flatMap(flagsOf),
    operand: args.length === 0 ? '' : /^(image|source|reference)$/.test(args[0]!.name()) ? 'images' : /(^| )volume /.test(`${prefix} `) && args[0]!.name() === 'name' ? 'volumes' : '',
    choices: args[0]?.argChoices ?? [],
  });
  for (const c of cmd.commands.filter(visible)) {
    for (const name of [c.name(), ...c.aliases()]) walk(c, prefix ? `${prefix} ${name}` : name, nodes);
  }
}

// The tables both shells share: `case "$1" in` over the command path.
function tables(nodes: Node[]): string {
  const fn = (name: string, pick: (n: Node) => string) =>
    `${name}() {\n  case "$1" in\n${nodes.map((n) => `    ${JSON.stringify(n.path)}) echo ${shellWords(pick(n))} ;;\n`).join('')}  esac\n}\n`;
  return (
    fn('_ufs_subs', (n) => n.subs.map((s) => s.name).join(' ')) +
    fn('_ufs_opts', (n) => n.options.join(' ')) +
    fn('_ufs_valopts', (n) => n.valueOptions.join(' ')) +
    fn('_ufs_operand', (n) => n.operand) +
    fn('_ufs_choices', (n) => n.choices.join(' '))
  );
}

function shellWords(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// Walks the words before the cursor: options (and their values) are skipped, each word that
// names a subcommand of the current path extends it.
const PATH_WALK = `_ufs_path() {
  # $1: index of the word under the cursor; the words are in _ufs_words
  local i w skip=0 path="" root=""
  for ((i = 1; i < $1; i++)); do
    w="\${_ufs_words[i]}"
    if ((skip)); then
      [[ "$path" == "" && "\${_ufs_words[i-1]}" == "--root" ]] && root="$w"
      skip=0
      continue
    fi
    case "$w" in
      -*=*) continue ;;
      -*)
        case " $(_ufs_valopts "$path") " in *" $w "*) skip=1 ;; esac
        continue ;;
    esac
    case " $(_ufs_subs "$path") " in
      *" $w "*) path="\${path:+$path }$w" ;;
    esac
  done
  _ufs_cmdpath="$path"
  _ufs_root="$root"
}
_ufs_names() {
  case "$1" in
    images) ufs \${_ufs_root:+--root} \${_ufs_root:+"$_ufs_root"} images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' ;;
    volumes) ufs \${_ufs_root:+--root} \${_ufs_root:+"$_ufs_root"} volume ls -q 2>/dev/null ;;
  esac
}
`;

function bash(nodes: Node[]): string {
  return `# bash completion for ufs, generated from its command tree: source <(ufs completion bash)
${tables(nodes)}${PATH_WALK}_ufs() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local _ufs_words=("\${COMP_WORDS[@]}") _ufs_cmdpath _ufs_root
  _ufs_path "$COMP_CWORD"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_ufs_opts "$_ufs_cmdpath")" -- "$cur"))
    return
  fi
  case " $(_ufs_valopts "$_ufs_cmdpath") " in
    *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  local subs
  subs="$(_ufs_subs "$_ufs_cmdpath") $(_ufs_choices "$_ufs_cmdpath")"
  if [[ -n "\${subs// /}" ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  elif [[ -n "$(_ufs_operand "$_ufs_cmdpath")" ]]; then
    COMPREPLY=($(compgen -W "$(_ufs_names "$(_ufs_operand "$_ufs_cmdpath")")" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _ufs ufs
`;
}

function zsh(nodes: Node[]): string {
  const described = nodes
    .filter((n) => n.subs.length)
    .map((n) => `    ${JSON.stringify(n.path)}) reply=(${n.subs.map((s) => shellWords(`${s.name}:${s.description.replace(/:/g, '\\:')}`)).join(' ')}) ;;\n`)
    .join('');
  return `#compdef ufs
# zsh completion for ufs, generated from its command tree: source <(ufs completion zsh)
${tables(nodes)}_ufs_described() {
  case "$1" in
${described}    *) reply=() ;;
  esac
}
${PATH_WALK}_ufs() {
  local -a _ufs_words reply
  local _ufs_cmdpath _ufs_root opts
  setopt localoptions ksharrays
  _ufs_words=("\${words[@]}")
  # with ksharrays the words count from 0, as in bash: the cursor's word is CURRENT-1
  _ufs_path $((CURRENT - 1))
  if [[ "$PREFIX" == -* ]]; then
    opts="$(_ufs_opts "$_ufs_cmdpath")"
    compadd -- \${=opts}
    return
  fi
  case " $(_ufs_valopts "$_ufs_cmdpath") " in
    *" \${_ufs_words[CURRENT-2]} "*) _files; return ;;
  esac
  _ufs_described "$_ufs_cmdpath"
  opts="$(_ufs_choices "$_ufs_cmdpath")"
  if (( \${#reply} )); then
    _describe -t commands 'ufs command' reply
  elif [[ -n "$opts" ]]; then
    compadd -- \${=opts}
  elif [[ -n "$(_ufs_operand "$_ufs_cmdpath")" ]]; then
    compadd -- \${(f)"$(_ufs_names "$(_ufs_operand "$_ufs_cmdpath")")"}
  else
    _files
  fi
}
compdef _ufs ufs
`;
}

export function completionScript(program: Command, shell: string): string {
  const nodes: Node[] = [];
  walk(program, '', nodes);
  if (shell === 'bash') return bash(nodes);
  if (shell === 'zsh') return zsh(nodes);
  throw new UfsError(`unsupported shell "${shell}": use bash or zsh`);
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash or zsh) generated from the command tree')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action((shell: string, _opts: unknown, cmd: Command) => {
      out(completionScript(cmd.parent!, shell));
    });
}
