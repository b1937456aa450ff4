#ifndef CALLWINDOW_CLIBPQ_SHIM_H
#define CALLWINDOW_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <poll.h>
#endif
