// Pins the founding report: 64 KiB blocks interleaved with std::list nodes stay resident after the blocks are freed (each live 24 B node pins the free space around it), and malloc_trim(0) gives them back.
//
// The scenario is the seed's program as written (new char[64 KiB], memset, push_back, delete[]
// all, list kept alive: seed_list.cpp, which the shim bench runs too); only the count comes from
// --count and the phases are reported.
#include "scenario.h"
#include "seed_list.h"

static void keep_node(const void *node, size_t size, void *s)
{
    scenario_keep(static_cast<struct scenario *>(s), node, size);
}

int main(int argc, char **argv)
{
    long count = 10000;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {nullptr, nullptr, 0, 0},
    };
    struct scenario s;
    scenario_init(&s, "seed_std_list", options, argc, argv);

    scenario_phase(&s, "baseline");
    seed_list_build(count);
    scenario_phase(&s, "peak");

    seed_list_free_blocks();
    // The page floor counts the list nodes that stay alive.
    seed_list_for_each_node(keep_node, &s);
    scenario_finish(&s);
}
