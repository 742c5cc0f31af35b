// Pins the founding report: 64 KiB blocks interleaved with std::list nodes stay resident after the blocks are freed (each live 24 B node pins the free space around it), and malloc_trim(0) gives them back.
//
// The scenario is the seed's program as written (new char[64 KiB], memset, push_back, delete[]
// all, list kept alive); only the count comes from --count and the phases are reported.
#include <cstring>
#include <list>

#include "scenario.h"

int main(int argc, char **argv)
{
    long count = 10000;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {nullptr, nullptr, 0, 0},
    };
    struct scenario s;
    scenario_init(&s, "seed_std_list", options, argc, argv);

    std::list<char *> free_list;
    scenario_phase(&s, "baseline");

    for (long i = 0; i < count; i++) {
        char *m = new char[1024 * 64];
        memset(m, 'a', 1024 * 64);
        free_list.push_back(m);
    }
    scenario_phase(&s, "peak");

    for (auto &v : free_list) {
        delete[] v;
    }

    // The page floor counts the list nodes that stay alive. A libstdc++ node is {next, prev} then
    // the value, so the node starts two pointers before the element.
    const size_t links = 2 * sizeof(void *);
    for (auto &v : free_list) {
        const char *node = reinterpret_cast<const char *>(&v) - links;
        scenario_keep(&s, node, links + sizeof v);
    }
    scenario_finish(&s);
}
