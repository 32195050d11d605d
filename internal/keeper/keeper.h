// See keeper.c.
#ifndef NSH_KEEPER_H
#define NSH_KEEPER_H

// nsh_keeper_joined is 1 once the constructor has joined a lab keeper's
// user and mount namespaces (_NSH_LAB_JOIN).
extern int nsh_keeper_joined;

#endif
