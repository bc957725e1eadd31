/*
 * sandbox.c: what a worker may no longer do once it talks to clients.
 *
 * A worker has dropped to `user` (worker.c) and has no way back; on top of
 * that, a seccomp filter (libseccomp) refuses with EPERM the system calls a
 * worker never makes: running programs, creating processes (threads stay
 * possible), tracing or reading other processes, changing credentials,
 * mounting and namespaces, kernel modules, keyrings, BPF, and the machine's
 * clock, name and power. The filter is a deny list rather than an allow list
 * on purpose: a worker also runs GnuTLS, libev and the C library, whose
 * system calls change between versions, and a filter that kills the process
 * for a call a library update added would take the service down. What is
 * listed here is what an attacker who took over a worker would want first.
 * The process is also made non-dumpable: no core file holds its session keys
 * and no process of the same user can ptrace it or read its memory.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>

#include "gateway/gateway_int.h"

/* After libev's header: seccomp.h pulls in <linux/elf.h>, whose EV_NONE
 * would break libev's enum. */
#include <seccomp.h>

static const char *const denied[] = {
	"execve", "execveat", "fork", "vfork",
	"process_vm_readv", "process_vm_writev", "kcmp",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
	"setfsuid", "setfsgid", "setgroups", "capset",
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"open_by_handle_at", "name_to_handle_at",
	"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"bpf", "perf_event_open", "userfaultfd", "personality",
	"keyctl", "add_key", "request_key",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "syslog",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "iopl", "ioperm",
};

void
gw_sandbox_worker(void)
{
	scmp_filter_ctx ctx;
	size_t i;
	int rc = 0, nr;

	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		cg_fatal("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		cg_fatal("seccomp_init failed");
	for (i = 0; i < sizeof(denied) / sizeof(denied[0]) && rc == 0; i++) {
		if ((nr = seccomp_syscall_resolve_name(denied[i])) == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
#if !defined(__SANITIZE_ADDRESS__)
	/* clone makes threads (CLONE_THREAD) or processes: only the first. The
	 * sanitizers' leak check at exit stops the process with a helper task
	 * made by clone and ptrace, so a sanitized build keeps both. clone3
	 * passes its flags in memory, out of a filter's reach: it says ENOSYS,
	 * and the C library falls back to clone. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
#endif
	if (rc == 0)
		rc = seccomp_load(ctx);	/* sets no_new_privs first */
	seccomp_release(ctx);
	if (rc < 0)
		cg_fatal("cannot install the worker's seccomp filter: %s", strerror(-rc));
}
