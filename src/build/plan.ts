// Stages of a Dockerfile and which of them a target needs: FROM lines (with the ARGs declared
// before the first FROM), `AS name`, and the edges FROM <stage> and COPY --from=<stage>.
import { UfsError } from '../common/errors.js';
import { lexWord } from './lexer.js';
import { DockerfileError, type Dockerfile, flagValue, type Instruction } from './parser.js';

export interface Stage {
  index: number;
  name?: string; // lower case, as Docker compares them
  from: Instruction;
  base: string; // after substitution with the global ARGs
  steps: Instruction[];
  deps: number[]; // stages it needs
}

export interface Plan {
  globalArgs: Instruction[];
  stages: Stage[];
  target: number;
  needed: number[]; // stage indexes to build, in order
}

export interface ArgDecl {
  name: string;
  value?: string; // default (raw, not yet substituted)
}

// ARG a=1 b c=2 -> declarations.
export function argDecls(ins: Instruction): ArgDecl[] {
  const words = ins.rest.split(/\s+/).filter(Boolean);
  if (words.length === 0) throw new UfsError('ARG requires at least one argument');
  return words.map((w) => {
    const i = w.indexOf('=');
    const name = i < 0 ? w : w.slice(0, i);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UfsError(`ARG: invalid name ${JSON.stringify(name)}`);
    return i < 0 ? { name } : { name, value: w.slice(i + 1) };
  });
}

export function makePlan(df: Dockerfile, file: string, globalVars: Map<string, string>, target?: string): Plan {
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of df.instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+[Aa][Ss]\s+(\S+))?\s*$/.exec(ins.rest);
      if (!m) throw new DockerfileError(file, ins.line, 'FROM requires one image, optionally followed by AS name');
      const base = lexWord(m[1]!, globalVars, df.escape);
      if (base === '') throw new DockerfileError(file, ins.line, `FROM: base name ${JSON.stringify(m[1])} is empty after substitution`);
      const name = m[2]?.toLowerCase();
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9._-]*$/.test(name)) throw new DockerfileError(file, ins.line, `invalid stage name ${JSON.stringify(m[2])}`);
        if (stages.some((s) => s.name === name)) throw new DockerfileError(file, ins.line, `duplicate stage name ${JSON.stringify(name)}`);
      }
      stages.push({ index: stages.length, ...(name ? { name } : {}), from: ins, base, steps: [], deps: [] });
      continue;
    }
    if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new DockerfileError(file, ins.line, `${ins.keyword} before the first FROM: only ARG may come first`);
      globalArgs.push(ins);
      continue;
    }
    stages.at(-1)!.steps.push(ins);
  }
  if (stages.length === 0) throw new DockerfileError(file, 1, 'no FROM instruction: the Dockerfile is empty');
  const byName = (ref: string, before: number): number | undefined => {
    const low = ref.toLowerCase();
    const named = stages.findIndex((s, i) => i < before && s.name === low);
    if (named >= 0) return named;
    if (/^\d+$/.test(ref) && Number(ref) < before) return Number(ref);
    return undefined;
  };
  for (const s of stages) {
    const fromStage = byName(s.base, s.index);
    if (fromStage !== undefined && !/^\d+$/.test(s.base)) s.deps.push(fromStage);
    for (const ins of s.steps) {
      if (ins.keyword !== 'COPY') continue;
      const from = flagValue(ins, 'from');
      if (from === undefined) continue;
      const ref = lexWord(from, globalVars, df.escape);
      const dep = byName(ref, s.index);
      if (dep !== undefined) s.deps.push(dep);
      else if (stages.some((o) => o.name === ref.toLowerCase())) {
        throw new DockerfileError(file, ins.line, `COPY --from=${ref}: stage ${ref} is defined later (a stage can only use earlier ones)`);
      }
    }
  }
  let t = stages.length - 1;
  if (target !== undefined) {
    const i = stages.findIndex((s) => s.name === target.toLowerCase());
    if (i < 0) throw new UfsError(`target stage ${JSON.stringify(target)} could not be found`);
    t = i;
  }
  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const d of stages[i]!.deps) visit(d);
  };
  visit(t);
  return { globalArgs, stages, target: t, needed: [...needed].sort((a, b) => a - b) };
}

// The stage a FROM or COPY --from names, if it names one before `before`.
export function stageRef(plan: Plan, ref: string, before: number): number | undefined {
  const low = ref.toLowerCase();
  const named = plan.stages.findIndex((s, i) => i < before && s.name === low);
  if (named >= 0) return named;
  if (/^\d+$/.test(ref) && Number(ref) < before) return Number(ref);
  return undefined;
}
