/*
 * strata-init: the tiny init `strata run --init` makes pid 1 of a container, bind-mounted
 * read-only at /sbin/docker-init and started as `/sbin/docker-init -- command args...`,
 * as Docker does with tini.
 *
 * It runs the command as its only child in a process group of its own (in the terminal's
 * foreground when stdin is one), forwards every signal it receives to that child, reaps
 * every process that ends up as its child (orphans are re-parented to pid 1), and exits
 * with the child's exit code, or 128+signal when the child was killed by a signal.
 *
 * Signals are blocked and taken with sigwaitinfo rather than handled: a pid-namespace init
 * gets signals from outside its namespace only when it has a handler or blocks them, and a
 * synchronous loop has no async-signal-safety traps. Faults stay unblocked so that a bug
 * crashes instead of spinning.
 *
 * Built as a fully static executable: it runs in any image, with or without a libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const int fault_signals[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS};

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "strata-init: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "",
		strerror(errno));
}

/* In the child, before exec: own process group, terminal foreground, clean signal state. */
static void exec_child(char **argv, const sigset_t *original)
{
	if (setpgid(0, 0) != 0)
		fail("setting the process group of", argv[0]);
	/* Fails with ENOTTY without a terminal, which is fine; SIGTTOU is still blocked here. */
	if (isatty(STDIN_FILENO) && tcsetpgrp(STDIN_FILENO, getpid()) != 0 && errno != ENOTTY)
		fail("giving the terminal to", argv[0]);
	signal(SIGTTIN, SIG_DFL);
	signal(SIGTTOU, SIG_DFL);
	sigprocmask(SIG_SETMASK, original, NULL);
	execvp(argv[0], argv);
	int code = errno == ENOENT ? 127 : 126;
	fail("cannot run", argv[0]);
	_exit(code);
}

/* Reaps every child that has ended; returns 1 and sets *code once `child` has. */
static int reap(pid_t child, int *code)
{
	int done = 0;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0) {
			if (pid < 0 && errno == EINTR)
				continue;
			return done;
		}
		if (pid != child)
			continue;
		if (WIFEXITED(status))
			*code = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			*code = 128 + WTERMSIG(status);
		else
			continue;
		done = 1;
	}
}

int main(int argc, char **argv)
{
	int first = 1;
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc) {
		fprintf(stderr, "usage: %s [--] command [argument...]\n", argv[0]);
		return 2;
	}
	/* Not pid 1 (run by hand): still adopt orphans so that they are reaped. */
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	sigset_t waited, original;
	sigfillset(&waited);
	for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++)
		sigdelset(&waited, fault_signals[i]);
	if (sigprocmask(SIG_SETMASK, &waited, &original) != 0) {
		fail("blocking signals", NULL);
		return 1;
	}
	/* Background reads/writes of the terminal must not stop the init itself. */
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);

	pid_t child = fork();
	if (child < 0) {
		fail("fork", NULL);
		return 1;
	}
	if (child == 0)
		exec_child(argv + first, &original);
	/* Also in the parent: whichever runs first, the child is in its group before any kill. */
	setpgid(child, child);

	int code = 0;
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&waited, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			fail("waiting for signals", NULL);
			return 1;
		}
		if (sig == SIGCHLD) {
			if (reap(child, &code))
				return code;
			continue;
		}
		/* ESRCH: the child is gone and its SIGCHLD is on its way. */
		if (kill(child, sig) != 0 && errno != ESRCH)
			fail("forwarding a signal", NULL);
	}
}
