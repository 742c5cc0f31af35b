/* A program of another project, built against an installed retention: it measures its own RSS
 * with rssprobe and reads the linked shim's state, which is all a consumer needs to link both. */
#include <stdio.h>

#include <rssprobe.h>
#include <trimshim.h>

int main(void)
{
    struct rssprobe_rss rss;
    struct trimshim_stats st;

    if (rssprobe_read_rss(&rss) != 0 || rss.rss_kb <= 0) {
        fprintf(stderr, "consumer: rssprobe_read_rss failed\n");
        return 1;
    }
    trimshim_get_stats(&st);
    printf("rss_kb=%ld trimshim=%s\n", rss.rss_kb, trimshim_state_name(st.state));
    return 0;
}
