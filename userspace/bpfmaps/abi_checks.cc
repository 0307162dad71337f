// The one copy of the datapath ABI is include/sluice/; these checks make a
// layout change that breaks BPF <-> userspace agreement fail the build.
#include <cstddef>

#include "sluice/datapath_structs.h"

#define SLUICE_CHECK_SIZE(type, size) static_assert(sizeof(struct type) == (size), #type " size changed")
#define SLUICE_CHECK_OFFSET(type, field, off) \
  static_assert(offsetof(struct type, field) == (off), #type "." #field " moved")

SLUICE_CHECK_SIZE(sluice_service_key, 24);
SLUICE_CHECK_OFFSET(sluice_service_key, port, 16);
SLUICE_CHECK_OFFSET(sluice_service_key, generation, 20);
SLUICE_CHECK_OFFSET(sluice_service_key, client_namespace, 22);
SLUICE_CHECK_SIZE(sluice_client_key, 20);
SLUICE_CHECK_OFFSET(sluice_client_key, generation, 17);
SLUICE_CHECK_SIZE(sluice_service, 16 + 8 * SLUICE_MAX_ROUTES);
SLUICE_CHECK_OFFSET(sluice_service, identity, 8);
SLUICE_CHECK_OFFSET(sluice_service, route_bound, 16);
SLUICE_CHECK_SIZE(sluice_vip_key, 20);
SLUICE_CHECK_SIZE(sluice_subset, 48);
SLUICE_CHECK_OFFSET(sluice_subset, member_first, 8);
SLUICE_CHECK_OFFSET(sluice_subset, maglev_len, 28);
SLUICE_CHECK_OFFSET(sluice_subset, identity, 40);
SLUICE_CHECK_SIZE(sluice_member, 8);
SLUICE_CHECK_SIZE(sluice_backend, 24);
SLUICE_CHECK_OFFSET(sluice_backend, port, 16);
SLUICE_CHECK_OFFSET(sluice_backend, flags, 20);
SLUICE_CHECK_SIZE(sluice_backend_load, 32);
SLUICE_CHECK_SIZE(sluice_flow_key, 40);
SLUICE_CHECK_OFFSET(sluice_flow_key, sport, 32);
SLUICE_CHECK_OFFSET(sluice_flow_key, proto, 36);
SLUICE_CHECK_SIZE(sluice_ct_entry, 24);
SLUICE_CHECK_SIZE(sluice_rnat_entry, 40);
SLUICE_CHECK_OFFSET(sluice_rnat_entry, vip, 8);
SLUICE_CHECK_SIZE(sluice_ctrl, 40);
SLUICE_CHECK_OFFSET(sluice_ctrl, generation, 0);
SLUICE_CHECK_SIZE(sluice_iface, 8);
SLUICE_CHECK_SIZE(sluice_counters, 80);
SLUICE_CHECK_SIZE(sluice_l7_key, 20);
SLUICE_CHECK_SIZE(sluice_addr_filter, 2 * SLUICE_ADDR_FILTER_BITS / 8);
SLUICE_CHECK_OFFSET(sluice_backend_load, l4_reaped, 24);
SLUICE_CHECK_OFFSET(sluice_rnat_entry, flags, 26);
SLUICE_CHECK_OFFSET(sluice_ctrl, steer_prog_id, 12);
