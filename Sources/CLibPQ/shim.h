#ifndef PULLSKETCH_CLIBPQ_SHIM_H
#define PULLSKETCH_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
