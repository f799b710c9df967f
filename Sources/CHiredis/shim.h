#ifndef PULLSKETCH_CHIREDIS_SHIM_H
#define PULLSKETCH_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
