/* app: subcommands that belong to no other module (version). Business logic lives in the
 * modules; this file only wires them to the command line. */
#include <stdio.h>

#include "app.h"

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("trackbridge %s\n", TB_VERSION);
    return 0;
}
