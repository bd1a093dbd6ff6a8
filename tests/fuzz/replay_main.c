/* replay_main: runs a libFuzzer harness over every file of a corpus folder, so the corpus is
 * a regression test in the ordinary suite. Exit 0 when every input ran without a crash. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = util_asprintf("%s/%s", argv[1], e->d_name);
        size_t len = 0;
        char *data = path ? util_read_file(path, 16 * 1024 * 1024, &len) : NULL;
        if (data) {
            LLVMFuzzerTestOneInput((const uint8_t *)data, len);
            count++;
        }
        free(data);
        free(path);
    }
    closedir(d);
    printf("%d passed, 0 failed\n", count);
    return count > 0 ? 0 : 1;
}
