/* syscall_probe: what a container may do, one line per attempt ("NAME ok" or "NAME ERRNO").
 *
 * Built fully static by the security tests (cc -static), so it runs in any image, and by
 * tests/differential/security.sh for the same probes under Docker. Each probe runs in a
 * forked child, so one that succeeds (a new user namespace, a new personality) cannot change
 * what the next one sees.
 *
 *   syscall_probe               the syscalls Docker's seccomp profile decides about
 *   syscall_probe fork N        fork N sleeping children, print how many forks worked
 *   syscall_probe alloc MIB     touch MIB MiB in a child, print whether it survived
 *   syscall_probe escape CONTROLLER FILE VALUE
 *                               try to lift a cgroup limit: new user + mount + cgroup
 *                               namespaces, mount the v1 hierarchy, write FILE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

static const char *errno_name(int e) {
    const char *name = strerrorname_np(e);
    return name ? name : "E?";
}

/* Runs `probe` in a child; the child exits with 0 on success or the errno. */
static void run(const char *name, long (*probe)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("%s fork-%s\n", name, errno_name(errno));
        return;
    }
    if (pid == 0) {
        errno = 0;
        long rc = probe();
        _exit(rc < 0 ? (errno ? errno : 255) : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status))
        printf("%s signal-%d\n", name, WTERMSIG(status));
    else if (WEXITSTATUS(status) == 0)
        printf("%s ok\n", name);
    else
        printf("%s %s\n", name, errno_name(WEXITSTATUS(status)));
}

static long p_unshare_user(void) { return syscall(SYS_unshare, CLONE_NEWUSER); }
static long p_unshare_ns(void) { return syscall(SYS_unshare, CLONE_NEWNS); }

static long clone_with(unsigned long flags) {
    long rc = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (rc == 0)
        _exit(0);
    if (rc > 0)
        waitpid((pid_t)rc, NULL, 0);
    return rc;
}
static long p_clone_fork(void) { return clone_with(0); }
static long p_clone_newuser(void) { return clone_with(CLONE_NEWUSER); }

static long p_clone3(void) {
    uint64_t args[11];
    memset(args, 0, sizeof args);
    args[4] = SIGCHLD; /* exit_signal */
    long rc = syscall(SYS_clone3, args, 88);
    if (rc == 0)
        _exit(0);
    if (rc > 0)
        waitpid((pid_t)rc, NULL, 0);
    return rc;
}

/* KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING */
static long p_keyctl(void) { return syscall(SYS_keyctl, 0, -3, 0); }
/* a "user" key in KEY_SPEC_PROCESS_KEYRING */
static long p_add_key(void) { return syscall(SYS_add_key, "user", "strata-probe", "x", 1, -2); }
static long p_request_key(void) { return syscall(SYS_request_key, "user", "strata-probe", NULL, 0); }

static long p_perf_event_open(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

static long p_userfaultfd(void) { return syscall(SYS_userfaultfd, O_CLOEXEC); }
/* ADDR_NO_RANDOMIZE: turns address-space randomisation off */
static long p_personality_norandom(void) { return syscall(SYS_personality, 0x0040000); }
static long p_personality_query(void) { return syscall(SYS_personality, 0xffffffffUL); }

static long p_name_to_handle_at(void) {
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[128];
    } handle;
    int mount_id;
    handle.handle_bytes = 128;
    return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &handle, &mount_id, 0);
}

static long p_open_by_handle_at(void) {
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } handle = {8, 1, {0}};
    return syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY);
}

static long p_move_pages(void) { return syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0); }
static long p_set_mempolicy(void) { return syscall(SYS_set_mempolicy, 0, NULL, 0); }
static long p_mount(void) { return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL); }

static long p_bpf(void) {
    unsigned char attr[128];
    memset(attr, 0, sizeof attr);
    return syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
}

/* SYSLOG_ACTION_SIZE_BUFFER */
static long p_syslog(void) { return syscall(SYS_syslog, 10, NULL, 0); }
static long p_kcmp(void) { return syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0); }
static long p_chroot(void) { return syscall(SYS_chroot, "/"); }
static long p_getpid(void) { return syscall(SYS_getpid); }

static int syscalls(void) {
    static const struct {
        const char *name;
        long (*probe)(void);
    } probes[] = {
        {"getpid", p_getpid},
        {"clone(fork)", p_clone_fork},
        {"clone(CLONE_NEWUSER)", p_clone_newuser},
        {"clone3", p_clone3},
        {"unshare(CLONE_NEWUSER)", p_unshare_user},
        {"unshare(CLONE_NEWNS)", p_unshare_ns},
        {"keyctl", p_keyctl},
        {"add_key", p_add_key},
        {"request_key", p_request_key},
        {"perf_event_open", p_perf_event_open},
        {"userfaultfd", p_userfaultfd},
        {"personality(ADDR_NO_RANDOMIZE)", p_personality_norandom},
        {"personality(query)", p_personality_query},
        {"name_to_handle_at", p_name_to_handle_at},
        {"open_by_handle_at", p_open_by_handle_at},
        {"move_pages", p_move_pages},
        {"set_mempolicy", p_set_mempolicy},
        {"mount", p_mount},
        {"bpf", p_bpf},
        {"syslog", p_syslog},
        {"kcmp", p_kcmp},
        {"chroot", p_chroot},
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        run(probes[i].name, probes[i].probe);
    return 0;
}

static int forks(int n) {
    pid_t *children = calloc((size_t)n, sizeof *children);
    int made = 0;
    for (int i = 0; i < n && children; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            pause();
            _exit(0);
        }
        if (pid < 0)
            break;
        children[made++] = pid;
    }
    printf("forked %d\n", made);
    for (int i = 0; i < made; i++)
        kill(children[i], SIGKILL);
    for (int i = 0; i < made; i++)
        waitpid(children[i], NULL, 0);
    return 0;
}

static int alloc(long mib) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        size_t size = (size_t)mib << 20;
        char *p = malloc(size);
        if (!p)
            _exit(12);
        for (size_t i = 0; i < size; i += 4096)
            p[i] = 1;
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        printf("alloc killed by signal %d\n", WTERMSIG(status));
    else
        printf("alloc %s\n", WEXITSTATUS(status) == 0 ? "ok" : "failed");
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 0;
}

static void step(const char *what, int rc) {
    if (rc < 0)
        printf("escape %s %s\n", what, errno_name(errno));
    else
        printf("escape %s ok\n", what);
}

static int escape(const char *controller, const char *file, const char *value) {
    char map[64], path[256];
    uid_t uid = getuid();
    gid_t gid = getgid();
    int rc = (int)syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP);
    step("unshare", rc);
    if (rc < 0)
        return 0;
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", gid);
    write_file("/proc/self/gid_map", map);
    mkdir("/tmp/probe-cgroup", 0700);
    rc = mount("cgroup", "/tmp/probe-cgroup", "cgroup", 0, controller);
    step("mount", rc);
    if (rc < 0)
        return 0;
    snprintf(path, sizeof path, "/tmp/probe-cgroup/%s", file);
    step("write", write_file(path, value));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 1 || strcmp(argv[1], "syscalls") == 0)
        return syscalls();
    if (argc == 3 && strcmp(argv[1], "fork") == 0)
        return forks(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "alloc") == 0)
        return alloc(atol(argv[2]));
    if (argc == 5 && strcmp(argv[1], "escape") == 0)
        return escape(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: syscall_probe [syscalls | fork N | alloc MIB | escape CONTROLLER FILE VALUE]\n");
    return 2;
}
