/*
 * The workflow kind's hooks (kinds/kinds.def): how flintd's follower of
 * workflows feeds the part that runs them. That part is the engine, which
 * does not exist yet: flintd gives the kind no part (struct
 * fl_kind_parts.workflows is NULL), so workflows are stored, checked and
 * followed, and nothing is fed. The engine fills these in.
 */
#include "kinds/kinds.h"

const struct fl_kind_hooks fl_wf_engine_hooks = {0};
