/* Check assertions that the Check of older distributions lacks (CentOS 7's EPEL ships 0.9.9:
 * no ck_assert_uint_*, ck_assert_ptr_*; ck_assert_ptr_null/nonnull arrived in 0.11). Each is
 * defined only where check.h did not, so a newer Check keeps its own (better) messages. */
#ifndef RETENTION_CHECK_COMPAT_H
#define RETENTION_CHECK_COMPAT_H

#include <check.h>
#include <stdint.h>

#define RETENTION_CK_CMP_(type, fmt, X, OP, Y)                                                   \
    do {                                                                                         \
        type ck_x_ = (type)(X), ck_y_ = (type)(Y);                                               \
        ck_assert_msg(ck_x_ OP ck_y_, "Assertion '%s' failed: %s == " fmt ", %s == " fmt,        \
                      #X " " #OP " " #Y, #X, ck_x_, #Y, ck_y_);                                  \
    } while (0)

#ifndef ck_assert_int_lt
#define ck_assert_int_lt(X, Y) RETENTION_CK_CMP_(intmax_t, "%jd", X, <, Y)
#define ck_assert_int_le(X, Y) RETENTION_CK_CMP_(intmax_t, "%jd", X, <=, Y)
#define ck_assert_int_gt(X, Y) RETENTION_CK_CMP_(intmax_t, "%jd", X, >, Y)
#define ck_assert_int_ge(X, Y) RETENTION_CK_CMP_(intmax_t, "%jd", X, >=, Y)
#endif
#ifndef ck_assert_uint_eq
#define ck_assert_uint_eq(X, Y) RETENTION_CK_CMP_(uintmax_t, "%ju", X, ==, Y)
#define ck_assert_uint_ne(X, Y) RETENTION_CK_CMP_(uintmax_t, "%ju", X, !=, Y)
#define ck_assert_uint_lt(X, Y) RETENTION_CK_CMP_(uintmax_t, "%ju", X, <, Y)
#define ck_assert_uint_le(X, Y) RETENTION_CK_CMP_(uintmax_t, "%ju", X, <=, Y)
#define ck_assert_uint_gt(X, Y) RETENTION_CK_CMP_(uintmax_t, "%ju", X, >, Y)
#define ck_assert_uint_ge(X, Y) RETENTION_CK_CMP_(uintmax_t, "%ju", X, >=, Y)
#endif
#ifndef ck_assert_ptr_ne
#define ck_assert_ptr_eq(X, Y) ck_assert_msg((const void *)(X) == (const void *)(Y), "%s == %s", #X, #Y)
#define ck_assert_ptr_ne(X, Y) ck_assert_msg((const void *)(X) != (const void *)(Y), "%s != %s", #X, #Y)
#endif
#ifndef ck_assert_ptr_null
#define ck_assert_ptr_null(X) ck_assert_msg((const void *)(X) == NULL, "%s is not NULL", #X)
#endif
#ifndef ck_assert_ptr_nonnull
#define ck_assert_ptr_nonnull(X) ck_assert_msg((const void *)(X) != NULL, "%s is NULL", #X)
#endif

#endif
