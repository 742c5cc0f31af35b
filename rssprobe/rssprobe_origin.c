/* See rssprobe_origin.h. No heap: the shim calls this from its constructor. */
#define _GNU_SOURCE
#include "rssprobe_origin.h"

#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <string.h>

/* Is `addr` a real definition of a symbol (not an undefined entry standing for it)? */
static int defines(void *addr, Dl_info *info)
{
    const ElfW(Sym) *sym = NULL;
    return addr != NULL && dladdr1(addr, info, (void **)&sym, RTLD_DL_SYMENT) && sym != NULL &&
           sym->st_shndx != SHN_UNDEF && info->dli_saddr == addr;
}

int rssprobe_definition_of(const char *name, Dl_info *info)
{
    if (defines(dlsym(RTLD_DEFAULT, name), info))
        return 1;
    /* The link map is in load order: the executable, the preloads, then the libraries they
     * need, which is the order of the global scope that RTLD_DEFAULT searches. */
    void *main_handle = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
    struct link_map *lm = NULL;
    int found = 0;
    if (main_handle == NULL)
        return 0;
    if (dlinfo(main_handle, RTLD_DI_LINKMAP, &lm) != 0)
        lm = NULL;
    for (; lm != NULL && !found; lm = lm->l_next) {
        if (lm->l_name == NULL || lm->l_name[0] == '\0')
            continue; /* the executable itself: its entry was the stub */
        void *h = dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD);
        if (h == NULL)
            continue; /* the vDSO */
        /* dlsym on a handle also searches that object's dependencies: keep only an answer
         * defined in this object, so the first object in order wins. */
        if (defines(dlsym(h, name), info) && info->dli_fname != NULL &&
            strcmp(info->dli_fname, lm->l_name) == 0)
            found = 1;
        dlclose(h);
    }
    dlclose(main_handle);
    return found;
}
