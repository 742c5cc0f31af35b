#include <stdlib.h>
#include <string.h>
#include <stdio.h>
struct node { struct node *next; char pad[8]; };
static void *keep[10];
static char *mid;
int main(void) {
    for (int i = 0; i < 10; i++) keep[i] = malloc(24);          /* still reachable: 240 B in 10 */
    void *lost = malloc(100); (void)lost; lost = NULL;          /* definitely lost: 100 B */
    struct node *a = malloc(sizeof *a); a->next = malloc(sizeof *a); a->next->next = NULL;
    a = NULL;                                                   /* 16 definite + 16 indirect */
    mid = (char *)malloc(64) + 8;                               /* possibly lost: 64 B */
    char *f = malloc(8); free(f);
    volatile char c = f[0]; (void)c;                            /* InvalidRead */
    c = f[1]; c = f[0];
    exit(0);
}
/* The program behind memcheck_leaky.xml (kept first so line numbers match the XML):
 * gcc -g -O0 -o leaky leaky.c &&
 * valgrind --tool=memcheck --xml=yes --xml-file=out.xml --leak-check=full --show-leak-kinds=all ./leaky */
