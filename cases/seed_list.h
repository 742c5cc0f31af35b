/* seed_list: the founding report's allocation pattern, and nothing else (no measuring, no
 * phases): count x (new char[64 KiB], memset, push_back onto a std::list<char *>), then delete[]
 * of every block with the list kept alive. The seed case (seed_std_list.cpp) and the shim bench's
 * seed scenario (bench/shimbench.c) both run this code, so the bench measures the case's heap. */
#ifndef SEED_LIST_H
#define SEED_LIST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates count blocks of SEED_LIST_BLOCK bytes, writes every byte, and appends each to the
 * list (one 24 B node per block, allocated right after it). */
#define SEED_LIST_BLOCK (64 * 1024)
void seed_list_build(long count);

/* delete[]s every block; the list and its nodes stay. */
void seed_list_free_blocks(void);

/* Calls fn for every list node, in list order, with the node's address and size (the pointers
 * libstdc++ puts before the element, and the element): what the page floor counts. */
void seed_list_for_each_node(void (*fn)(const void *node, size_t size, void *ctx), void *ctx);

/* Frees the nodes (the list is then empty). The seed case never calls it: it exits with them. */
void seed_list_clear(void);

#ifdef __cplusplus
}
#endif
#endif
