// ufs-init: the container's first process. Being written (issue 4).
#include <stdio.h>
int main(void) { fprintf(stderr, "ufs-init: not built yet\n"); return 125; }
