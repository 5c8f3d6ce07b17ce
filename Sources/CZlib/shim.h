// The system zlib, seen from Swift as the module CZlib (used by LatentData).
#include <zlib.h>
