#ifndef PULLSKETCH_CXXHASH_SHIM_H
#define PULLSKETCH_CXXHASH_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>
#endif
