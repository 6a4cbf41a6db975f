/* The floor of an ELF tree scan that finds its files itself: walk a tree
 * with getdents64, and for every file it examines do what nodecheck's
 * content door does to sniff it (openat O_NOFOLLOW|O_NONBLOCK, fstat,
 * pread of 18 bytes, close), on one thread, with nothing else: no paths
 * kept, no checks. benches/walk.sh builds and times it beside nodecheck.
 *
 *   cc -O2 -o sniff_floor benches/sniff_floor.c
 *   ./sniff_floor DIR            every regular file (`candidates = "all"`)
 *   ./sniff_floor -c DIR         candidates only (`candidates = "loadable"`,
 *                                the default): a name with a shared
 *                                object's shape (`*.so`, `*.so.*`) is
 *                                opened at once; a name ending like a
 *                                data format (`data_name` below, the
 *                                list of elf/scan.rs) is left alone; any
 *                                other file costs an fstatat and is
 *                                opened only when it has an execute bit
 *                                and at least 52 bytes. Kernel modules
 *                                (`*.ko*`) are never opened, and
 *                                lib/modules below DIR (the kernel's
 *                                module tree, for DIR = ROOT/usr) is not
 *                                walked.
 *
 * It prints how many files it examined: benches/walk.sh checks that
 * nodecheck examined as many.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static long files, examined, elves;
static int candidates;

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int shared_object_name(const char *name) {
    return ends_with(name, ".so") || strstr(name, ".so.") != NULL;
}

static int kernel_module(const char *name) {
    return ends_with(name, ".ko") || ends_with(name, ".ko.xz") || ends_with(name, ".ko.zst") ||
           ends_with(name, ".ko.gz");
}

/* crates/checks/src/elf/scan.rs DATA_EXTENSIONS */
static const char *const data_extensions[] = {
    "a",   "al",  "am",    "bz2",     "c",      "cc",     "conf", "cpp",  "css", "cxx",  "enc",
    "gz",  "h",   "hh",    "hpp",     "htm",    "html",   "hwdb", "hxx",  "js",  "json", "lua",
    "m4",  "md",  "mo",    "msg",     "o",      "pc",     "ph",   "pl",   "pm",  "po",   "pod",
    "py",  "pyc", "pyi",   "rules",   "service", "socket", "target", "tcc", "tcl", "timer", "txt",
    "xml", "xz",  "yaml",  "yml",     "zst",
};

static int data_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof data_extensions / sizeof *data_extensions; i++)
        if (!strcmp(dot + 1, data_extensions[i]))
            return 1;
    return 0;
}

static void sniff(int dir, const char *name) {
    int f = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOATIME);
    if (f < 0)
        return;
    struct stat st;
    char head[18];
    if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) && pread(f, head, sizeof head, 0) >= 4 &&
        !memcmp(head, "\177ELF", 4))
        elves++;
    examined++;
    close(f);
}

/* depth 1: a directory of DIR; in_lib: its name is "lib". */
static void walk(int dir, int depth, int in_lib) {
    char buf[32768];
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
        if (n <= 0)
            return;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
                continue;
            if (d->d_type == DT_DIR) {
                if (candidates && depth == 1 && in_lib && !strcmp(d->d_name, "modules"))
                    continue;
                int sub = openat(dir, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                    walk(sub, depth + 1, depth == 0 && !strcmp(d->d_name, "lib"));
                    close(sub);
                }
            } else if (d->d_type == DT_REG) {
                files++;
                if (!candidates) {
                    sniff(dir, d->d_name);
                    continue;
                }
                if (kernel_module(d->d_name))
                    continue;
                if (!shared_object_name(d->d_name) && data_name(d->d_name))
                    continue;
                if (!shared_object_name(d->d_name)) {
                    struct stat st;
                    if (fstatat(dir, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                        !S_ISREG(st.st_mode) || !(st.st_mode & 0111) || st.st_size < 52)
                        continue;
                }
                sniff(dir, d->d_name);
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "-c")) {
        candidates = 1;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s [-c] DIR\n", argv[0]);
        return 2;
    }
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        perror(argv[1]);
        return 1;
    }
    walk(dir, 0, 0);
    printf("%ld regular files, %ld examined, %ld with the ELF magic\n", files, examined, elves);
    return 0;
}
