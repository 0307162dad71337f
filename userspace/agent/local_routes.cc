#include "agent/local_routes.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sluice::agent {

std::set<model::IpAddress> l7_vips(const model::Snapshot& snapshot) {
  std::set<model::IpAddress> out;
  for (const auto& svc : snapshot.services) {
    bool l7 = false;
    for (const auto& r : svc.routes) l7 = l7 || r.plane == model::Plane::L7;
    if (l7) out.insert(svc.vips.begin(), svc.vips.end());
  }
  return out;
}

namespace {

void add_attr(nlmsghdr* msg, uint16_t type, const void* data, size_t len) {
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(msg) + NLMSG_ALIGN(msg->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(RTA_DATA(rta), data, len);
  msg->nlmsg_len = NLMSG_ALIGN(msg->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

// RTM_NEWROUTE / RTM_DELROUTE of `local VIP/len dev lo table local`; returns 0 or -errno.
int change_local_route(const model::IpAddress& vip, bool add) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  alignas(nlmsghdr) char buf[512] = {};
  auto* msg = reinterpret_cast<nlmsghdr*>(buf);
  msg->nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  msg->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
  msg->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? (NLM_F_CREATE | NLM_F_REPLACE) : 0);
  auto* rt = static_cast<rtmsg*>(NLMSG_DATA(msg));
  rt->rtm_family = vip.is_v4() ? AF_INET : AF_INET6;
  rt->rtm_dst_len = vip.is_v4() ? 32 : 128;
  rt->rtm_table = RT_TABLE_LOCAL;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = RT_SCOPE_HOST;
  rt->rtm_type = RTN_LOCAL;
  add_attr(msg, RTA_DST, vip.bytes.data(), vip.is_v4() ? 4 : 16);
  uint32_t lo = if_nametoindex("lo");
  add_attr(msg, RTA_OIF, &lo, sizeof lo);
  int result = 0;
  if (send(fd, msg, msg->nlmsg_len, 0) < 0) {
    result = -errno;
  } else {
    char reply[1024];
    ssize_t n = recv(fd, reply, sizeof reply, 0);
    if (n < 0) {
      result = -errno;
    } else {
      auto* r = reinterpret_cast<nlmsghdr*>(reply);
      if (r->nlmsg_type == NLMSG_ERROR) result = static_cast<nlmsgerr*>(NLMSG_DATA(r))->error;
    }
  }
  close(fd);
  return result;
}

}  // namespace

void LocalRoutes::sync(const std::set<model::IpAddress>& vips) {
  for (const auto& vip : vips) {
    if (installed_.count(vip)) continue;
    if (int err = change_local_route(vip, true); err != 0) {
      throw std::runtime_error("cannot add local route for L7 VIP " + vip.to_string() + ": " +
                               std::strerror(-err));
    }
    installed_.insert(vip);
  }
  for (auto it = installed_.begin(); it != installed_.end();) {
    if (vips.count(*it)) {
      ++it;
      continue;
    }
    change_local_route(*it, false);
    it = installed_.erase(it);
  }
}

void LocalRoutes::remove_all() { sync({}); }

}  // namespace sluice::agent
