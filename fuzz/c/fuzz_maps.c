/* The /proc/self/maps scan of rssprobe_mallinfo.c (thread heaps told from other anonymous memory),
 * fed the input as the file's text, once whole and once in pieces of input-chosen sizes, with
 * thread heap headers read from memory the input describes too.
 * Input: the maps text, then (after a 0x00 0x00 pair, if any) the bytes the fake memory holds.
 * Contract: the pieces give the same figures as the whole (a line may span two reads); the sums
 * stay within what the mappings span; never a read past the text or the memory (ASan), never a
 * signed overflow (UBSan). */
#include "fuzz_common.h"
#include "rssprobe_mallinfo.h"

#include <string.h>

struct mem {
    const uint8_t *bytes;
    size_t len;
};

/* Every address reads from the memory bytes, at an offset its bits pick: heap headers then
 * appear at some aligned addresses and not at others. */
static int peek(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct mem *m = ctx;
    if (m->len < len || (addr >> 20 & 7) == 7)
        return -1; /* unreadable */
    size_t off = (size_t)((addr >> 12) % (m->len - len + 1));
    memcpy(buf, m->bytes + off, len);
    return 0;
}

static void scan(const char *text, size_t len, const size_t *cuts, size_t ncuts, unsigned word,
                 uint64_t heap_max, struct mem *m, struct rssprobe_arena_maps *out, int *rc)
{
    struct rssprobe_maps_scan s;
    rssprobe_maps_scan_init(&s, heap_max, 4096, word, m->len ? peek : NULL, m);
    size_t at = 0;
    for (size_t i = 0; i < ncuts && at < len; i++) {
        size_t n = cuts[i] < len - at ? cuts[i] : len - at;
        rssprobe_maps_scan_feed(&s, text + at, n);
        at += n;
    }
    if (at < len)
        rssprobe_maps_scan_feed(&s, text + at, len - at);
    *rc = rssprobe_maps_scan_end(&s);
    *out = s.maps;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t text_len = size;
    struct mem m = {NULL, 0};
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == 0 && data[i + 1] == 0) {
            text_len = i;
            m.bytes = data + i + 2;
            m.len = size - i - 2;
            break;
        }
    const char *text = (const char *)data;

    /* piece sizes from the text's own bytes: deterministic, and they vary with the input */
    size_t cuts[16];
    for (size_t i = 0; i < 16; i++)
        cuts[i] = 1 + (text_len ? (unsigned char)text[(i * 131) % text_len] % 200 : 0);

    for (unsigned word = 4; word <= 8; word += 4) {
        uint64_t heap_max = word == 8 ? UINT64_C(64) << 20 : UINT64_C(1) << 20;
        struct rssprobe_arena_maps whole, pieces;
        int rc_whole, rc_pieces;
        scan(text, text_len, NULL, 0, word, heap_max, &m, &whole, &rc_whole);
        scan(text, text_len, cuts, 16, word, heap_max, &m, &pieces, &rc_pieces);
        FUZZ_CHECK(rc_whole == 0 || rc_whole == -1, "rc %d", rc_whole);
        FUZZ_CHECK(rc_whole == rc_pieces && memcmp(&whole, &pieces, sizeof whole) == 0,
                   "pieces differ from the whole (word %u): rc %d/%d main %llu/%llu thread %llu/%llu "
                   "heaps %u/%u other %llu/%llu",
                   word, rc_whole, rc_pieces, (unsigned long long)whole.main_heap_bytes,
                   (unsigned long long)pieces.main_heap_bytes,
                   (unsigned long long)whole.thread_heap_bytes,
                   (unsigned long long)pieces.thread_heap_bytes, whole.thread_heaps,
                   pieces.thread_heaps, (unsigned long long)whole.other_anon_bytes,
                   (unsigned long long)pieces.other_anon_bytes);
        if (m.len == 0)
            FUZZ_CHECK(whole.thread_heaps == 0 && whole.thread_heap_bytes == 0,
                       "thread heaps found with no memory to read their headers from");
    }
    return 0;
}
