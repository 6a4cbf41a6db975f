/* The floor of an ELF tree scan that finds its files itself: walk a tree
 * with getdents64, and for every regular file do what nodecheck's content
 * door does to sniff it (openat O_NOFOLLOW|O_NONBLOCK, fstat, pread of 18
 * bytes, close), on one thread, with nothing else: no paths kept, no
 * checks. benches/walk.sh builds and times it beside nodecheck.
 *
 *   cc -O2 -o sniff_floor benches/sniff_floor.c && ./sniff_floor DIR
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static long files, elves;

static void walk(int dir) {
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
                int sub = openat(dir, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                    walk(sub);
                    close(sub);
                }
            } else if (d->d_type == DT_REG) {
                int f = openat(dir, d->d_name,
                               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOATIME);
                if (f < 0)
                    continue;
                struct stat st;
                char head[18];
                if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) &&
                    pread(f, head, sizeof head, 0) >= 4 && !memcmp(head, "\177ELF", 4))
                    elves++;
                files++;
                close(f);
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        perror(argv[1]);
        return 1;
    }
    walk(dir);
    printf("%ld regular files, %ld with the ELF magic\n", files, elves);
    return 0;
}
