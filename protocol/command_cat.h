/*
 * protocol/command_cat.h -- GENERATED FILE, do not edit by hand.
 *
 * Redis's ACL command categories, from `ACL CAT` of redis-server 7.0.15, in
 * Redis's own order (which is also bit order), generated with
 * protocol/command_table.c by tools/gen_command_table.py. The one
 * declaration of the list: protocol/command.h builds enum cmd_cat from it,
 * protocol/command.c the names that cmd_cat_lookup() searches.
 *
 * X(IDENT, "name"): CMD_CAT_IDENT is the bit, "name" what ACL rules say
 * after "@".
 */
#ifndef REDSNANO_PROTOCOL_COMMAND_CAT_H
#define REDSNANO_PROTOCOL_COMMAND_CAT_H

#define CMD_CATEGORIES(X) \
    X(KEYSPACE, "keyspace") \
    X(READ, "read") \
    X(WRITE, "write") \
    X(SET, "set") \
    X(SORTEDSET, "sortedset") \
    X(LIST, "list") \
    X(HASH, "hash") \
    X(STRING, "string") \
    X(BITMAP, "bitmap") \
    X(HYPERLOGLOG, "hyperloglog") \
    X(GEO, "geo") \
    X(STREAM, "stream") \
    X(PUBSUB, "pubsub") \
    X(ADMIN, "admin") \
    X(FAST, "fast") \
    X(SLOW, "slow") \
    X(BLOCKING, "blocking") \
    X(DANGEROUS, "dangerous") \
    X(CONNECTION, "connection") \
    X(TRANSACTION, "transaction") \
    X(SCRIPTING, "scripting") \

#define CMD_CATEGORY_COUNT 21

#endif
