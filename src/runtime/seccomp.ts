// The default seccomp profile: Docker's (moby's profiles/seccomp/default.json), kept here as
// data, and its conversion to the OCI runtime spec's linux.seccomp for this host's
// architecture and the container's capabilities (as Docker converts it before handing it to
// runc). Not podman's variant (/usr/share/containers/seccomp.json): that one allows unshare
// and new namespaces without CAP_SYS_ADMIN, which Docker's, the reference here, refuses.
import fs from 'node:fs';
import os from 'node:os';
import { UfsError } from '../common/errors.js';

export interface SeccompArg { index: number; value: number; valueTwo?: number; op: string }
export interface SeccompSyscall { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }
export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: SeccompSyscall[];
}

// A rule of the profile: applies when `arches`/`caps` (any of) match and `notCaps`/`notArches` do not.
interface Rule {
  names: string[];
  action?: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
  arches?: string[];
  notArches?: string[];
  caps?: string[];
  notCaps?: string[];
  minKernel?: [number, number];
}

const ALWAYS = `accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect
poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom
recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid
setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat
shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs
sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev`;

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const eq = (index: number, value: number): SeccompArg => ({ index, value, op: 'SCMP_CMP_EQ' });
// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone without any of them.
const CLONE_NS_FLAGS = 2114060288;

export const DEFAULT_PROFILE: Rule[] = [
  { names: words(ALWAYS) },
  { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], minKernel: [4, 8] },
  { names: ['socket'], args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] }, // not AF_VSOCK
  ...[0, 8, 131072, 131080, 4294967295].map((v) => ({ names: ['personality'], args: [eq(0, v)] })),
  { names: ['sync_file_range2', 'swapcontext'], arches: ['ppc64le'] },
  { names: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'], arches: ['arm', 'arm64'] },
  { names: ['arch_prctl'], arches: ['amd64', 'x32'] },
  { names: ['modify_ldt'], arches: ['amd64', 'x32', 'x86'] },
  { names: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], arches: ['s390', 's390x'] },
  { names: ['riscv_flush_icache'], arches: ['riscv64'] },
  { names: ['open_by_handle_at'], caps: ['CAP_DAC_READ_SEARCH'] },
  {
    names: words(`bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
      mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
      sethostname setns syslog umount umount2 unshare`),
    caps: ['CAP_SYS_ADMIN'],
  },
  { names: ['clone'], args: [{ index: 0, value: CLONE_NS_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], notCaps: ['CAP_SYS_ADMIN'], notArches: ['s390', 's390x'] },
  { names: ['clone'], args: [{ index: 1, value: CLONE_NS_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], arches: ['s390', 's390x'], notCaps: ['CAP_SYS_ADMIN'] },
  // clone3's flags are behind a pointer: ENOSYS makes libcs fall back to clone.
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, notCaps: ['CAP_SYS_ADMIN'] },
  { names: ['reboot'], caps: ['CAP_SYS_BOOT'] },
  { names: ['chroot'], caps: ['CAP_SYS_CHROOT'] },
  { names: ['delete_module', 'init_module', 'finit_module'], caps: ['CAP_SYS_MODULE'] },
  { names: ['acct'], caps: ['CAP_SYS_PACCT'] },
  { names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'], caps: ['CAP_SYS_PTRACE'] },
  { names: ['iopl', 'ioperm'], caps: ['CAP_SYS_RAWIO'] },
  { names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'], caps: ['CAP_SYS_TIME'] },
  { names: ['vhangup'], caps: ['CAP_SYS_TTY_CONFIG'] },
  { names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'], caps: ['CAP_SYS_NICE'] },
  { names: ['syslog'], caps: ['CAP_SYSLOG'] },
  { names: ['bpf'], caps: ['CAP_BPF'] },
  { names: ['perf_event_open'], caps: ['CAP_PERFMON'] },
];

// Node's arch to the profile's arch name and libseccomp's architectures (native first).
const ARCHES: Record<string, { name: string; scmp: string[] }> = {
  x64: { name: 'amd64', scmp: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
  ia32: { name: 'x86', scmp: ['SCMP_ARCH_X86'] },
  arm64: { name: 'arm64', scmp: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] },
  arm: { name: 'arm', scmp: ['SCMP_ARCH_ARM'] },
  ppc64: { name: 'ppc64le', scmp: ['SCMP_ARCH_PPC64LE'] },
  s390x: { name: 's390x', scmp: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'] },
  riscv64: { name: 'riscv64', scmp: ['SCMP_ARCH_RISCV64'] },
};

function kernelAtLeast(min: [number, number]): boolean {
  const [maj, minor] = os.release().split('.').map((x) => Number.parseInt(x, 10));
  return maj > min[0] || (maj === min[0] && minor >= min[1]);
}

// The profile as the OCI spec wants it, for this host and the container's capabilities.
export function defaultSeccomp(caps: string[]): LinuxSeccomp {
  const arch = ARCHES[process.arch] ?? { name: process.arch, scmp: [] };
  const has = new Set(caps);
  const out: SeccompSyscall[] = [];
  for (const r of DEFAULT_PROFILE) {
    if (r.arches && !r.arches.includes(arch.name)) continue;
    if (r.notArches?.includes(arch.name)) continue;
    if (r.caps && !r.caps.some((c) => has.has(c))) continue;
    if (r.notCaps?.some((c) => has.has(c))) continue;
    if (r.minKernel && !kernelAtLeast(r.minKernel)) continue;
    out.push({
      names: r.names,
      action: r.action ?? 'SCMP_ACT_ALLOW',
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args ? { args: r.args } : {}),
    });
  }
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, architectures: arch.scmp, syscalls: out };
}

// `--security-opt seccomp=FILE`: a profile in Docker's JSON form (the same fields as above,
// with includes/excludes), converted the same way.
export function seccompFromFile(file: string, caps: string[]): LinuxSeccomp {
  let doc: {
    defaultAction?: string; defaultErrnoRet?: number; architectures?: string[];
    archMap?: { architecture: string; subArchitectures?: string[] | null }[];
    syscalls?: (SeccompSyscall & { name?: string; includes?: { arches?: string[]; caps?: string[]; minKernel?: string }; excludes?: { arches?: string[]; caps?: string[] } })[];
  };
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UfsError(`opening seccomp profile (${file}) failed: ${(err as Error).message}`, 125);
  }
  if (typeof doc.defaultAction !== 'string') throw new UfsError(`seccomp profile ${file}: no defaultAction`, 125);
  const arch = ARCHES[process.arch] ?? { name: process.arch, scmp: [] };
  let architectures = doc.architectures ?? [];
  if (doc.archMap) {
    const native = arch.scmp[0];
    const m = doc.archMap.find((a) => a.architecture === native);
    architectures = m ? [m.architecture, ...(m.subArchitectures ?? [])] : [];
  }
  const has = new Set(caps);
  const syscalls: SeccompSyscall[] = [];
  for (const s of doc.syscalls ?? []) {
    const inc = s.includes ?? {};
    const exc = s.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(arch.name)) continue;
    if (inc.caps?.length && !inc.caps.some((c) => has.has(c))) continue;
    if (inc.minKernel) {
      const [a, b] = inc.minKernel.split('.').map(Number);
      if (!kernelAtLeast([a, b || 0])) continue;
    }
    if (exc.arches?.includes(arch.name)) continue;
    if (exc.caps?.some((c) => has.has(c))) continue;
    const names = s.names ?? (s.name ? [s.name] : []);
    if (names.length === 0) continue;
    syscalls.push({
      names,
      action: s.action,
      ...(s.errnoRet !== undefined ? { errnoRet: s.errnoRet } : {}),
      ...(s.args?.length ? { args: s.args } : {}),
    });
  }
  return {
    defaultAction: doc.defaultAction,
    ...(doc.defaultErrnoRet !== undefined ? { defaultErrnoRet: doc.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}
