// seed_list: see seed_list.h. The code is the seed's program as written; only the loop bound is a
// parameter and the list has static storage.
#include "seed_list.h"

#include <cstring>
#include <list>
#include <new>

namespace {

typedef std::list<char *> block_list;

// Constructed in place in static storage and never destroyed. A global std::list would register
// a destructor that frees the nodes when the case calls exit(), and memcheck must find them still
// reachable (its bound: still_reachable_blocks == live_objects); a list on the heap would add a
// block of its own to that count. Static storage is also a root memcheck always scans.
alignas(block_list) unsigned char list_storage[sizeof(block_list)];
block_list *free_list;

block_list &the_list()
{
    if (!free_list)
        free_list = new (list_storage) block_list();
    return *free_list;
}

} // namespace

extern "C" void seed_list_build(long count)
{
    block_list &l = the_list();
    for (long i = 0; i < count; i++) {
        char *m = new char[SEED_LIST_BLOCK];
        memset(m, 'a', SEED_LIST_BLOCK);
        l.push_back(m);
    }
}

extern "C" void seed_list_free_blocks(void)
{
    for (auto &v : the_list()) {
        delete[] v;
    }
}

extern "C" void seed_list_for_each_node(void (*fn)(const void *node, size_t size, void *ctx),
                                        void *ctx)
{
    // A libstdc++ node is {next, prev} then the value, so the node starts two pointers before the
    // element.
    const size_t links = 2 * sizeof(void *);
    for (auto &v : the_list()) {
        const char *node = reinterpret_cast<const char *>(&v) - links;
        fn(node, links + sizeof v, ctx);
    }
}

extern "C" void seed_list_clear(void)
{
    the_list().clear();
}
