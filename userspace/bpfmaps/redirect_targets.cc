#include "bpfmaps/redirect_targets.h"

#include <libmnl/libmnl.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <set>

#include <spdlog/spdlog.h>

#include "bpfmaps/bpf_datapath.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {
namespace {

// include/uapi/linux/netdev.h (Linux 6.3+; Debian 12's headers predate it).
constexpr const char* kNetdevFamily = "netdev";
constexpr uint8_t kNetdevCmdDevGet = 1;
constexpr uint16_t kNetdevAttrIfindex = 1;
constexpr uint16_t kNetdevAttrXdpFeatures = 3;
constexpr uint64_t kNetdevXdpActNdoXmit = 4;

using Socket = std::unique_ptr<mnl_socket, decltype(&mnl_socket_close)>;

// Sends `request` and feeds every reply message to `cb` until the dump or
// the acknowledgement ends. False on any netlink error.
bool exchange(mnl_socket* nl, nlmsghdr* request, mnl_cb_t cb, void* data) {
  const uint32_t seq = request->nlmsg_seq;
  if (mnl_socket_sendto(nl, request, request->nlmsg_len) < 0) return false;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n <= 0) return false;
    const int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, mnl_socket_get_portid(nl), cb, data);
    if (rc == MNL_CB_ERROR) return false;
    if (rc == MNL_CB_STOP) return true;
  }
}

int family_id_attr(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID) *static_cast<uint16_t*>(data) = mnl_attr_get_u16(attr);
  return MNL_CB_OK;
}

int family_id_cb(const nlmsghdr* msg, void* data) {
  return mnl_attr_parse(msg, sizeof(genlmsghdr), family_id_attr, data);
}

struct DeviceAttrs {
  uint32_t ifindex = 0;
  uint64_t xdp_features = 0;
};

int device_attr(const nlattr* attr, void* data) {
  auto* dev = static_cast<DeviceAttrs*>(data);
  if (mnl_attr_get_type(attr) == kNetdevAttrIfindex) dev->ifindex = mnl_attr_get_u32(attr);
  if (mnl_attr_get_type(attr) == kNetdevAttrXdpFeatures) dev->xdp_features = mnl_attr_get_u64(attr);
  return MNL_CB_OK;
}

int device_cb(const nlmsghdr* msg, void* data) {
  DeviceAttrs dev;
  if (mnl_attr_parse(msg, sizeof(genlmsghdr), device_attr, &dev) < 0) return MNL_CB_ERROR;
  if (dev.ifindex == 0) return MNL_CB_OK;
  RedirectTarget t;
  t.ifindex = dev.ifindex;
  t.native_redirect = (dev.xdp_features & kNetdevXdpActNdoXmit) != 0;
  static_cast<std::vector<RedirectTarget>*>(data)->push_back(t);
  return MNL_CB_OK;
}

nlmsghdr* genl_request(char* buf, uint16_t type, uint8_t cmd, uint16_t flags, uint32_t seq) {
  nlmsghdr* msg = mnl_nlmsg_put_header(buf);
  msg->nlmsg_type = type;
  msg->nlmsg_flags = NLM_F_REQUEST | flags;
  msg->nlmsg_seq = seq;
  auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(msg, sizeof(genlmsghdr)));
  genl->cmd = cmd;
  genl->version = 1;
  return msg;
}

std::string driver_of(const std::string& name) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  req.ifr_data = reinterpret_cast<char*>(&info);
  const int rc = ioctl(fd, SIOCETHTOOL, &req);
  close(fd);
  return rc == 0 ? std::string(info.driver) : "";
}

}  // namespace

std::optional<std::vector<RedirectTarget>> probe_redirect_targets() {
  Socket nl(mnl_socket_open(NETLINK_GENERIC), &mnl_socket_close);
  if (!nl || mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return std::nullopt;
  // The agent's main loop runs this: a reply that never comes (dropped on a
  // full socket buffer) must not keep it from its signals.
  const timeval timeout{1, 0};
  if (setsockopt(mnl_socket_get_fd(nl.get()), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0)
    return std::nullopt;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  uint32_t seq = 1;

  nlmsghdr* req = genl_request(buf.data(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY, NLM_F_ACK, seq++);
  mnl_attr_put_strz(req, CTRL_ATTR_FAMILY_NAME, kNetdevFamily);
  uint16_t family = 0;
  if (!exchange(nl.get(), req, family_id_cb, &family) || family == 0) return std::nullopt;

  std::vector<RedirectTarget> targets;
  req = genl_request(buf.data(), family, kNetdevCmdDevGet, NLM_F_DUMP, seq++);
  if (!exchange(nl.get(), req, device_cb, &targets)) return std::nullopt;
  for (RedirectTarget& t : targets) {
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(t.ifindex, name)) t.name = name;
    t.driver = driver_of(t.name);
  }
  return targets;
}

std::string no_redirect_reason(const RedirectTarget& t) {
  if (t.driver == "veth")
    return "its veth peer has no XDP program and GRO off: native XDP_REDIRECT would be dropped";
  return "its driver (" + (t.driver.empty() ? std::string("unknown") : t.driver) +
         ") cannot transmit XDP frames (no ndo_xdp_xmit)";
}

void mark_redirect_targets(BpfDatapath& datapath, const std::vector<RedirectTarget>& targets) {
  const uint32_t room = datapath.max_entries(MapRole::Ifaces);
  std::set<uint32_t> present;
  for (const Bytes& raw : datapath.keys(MapRole::Ifaces)) {
    uint32_t ifindex = 0;
    std::memcpy(&ifindex, raw.data(), std::min(raw.size(), sizeof(ifindex)));
    present.insert(ifindex);
  }
  for (const RedirectTarget& t : targets) {
    sluice_iface entry{};
    const bool known = datapath.lookup(MapRole::Ifaces, as_bytes_of(t.ifindex), as_writable_bytes_of(entry));
    const uint32_t flags = t.native_redirect ? entry.flags | SLUICE_IFACE_F_REDIRECT_OK
                                             : entry.flags & ~uint32_t{SLUICE_IFACE_F_REDIRECT_OK};
    if (known && flags == entry.flags) continue;
    if (!known && !t.native_redirect) continue;   // absent = not marked
    if (!known && present.size() >= room) {
      spdlog::warn("xdp: no room in sluice_ifaces ({} entries) to mark {} for native redirects; "
                   "its packets go through the kernel", room, t.name);
      continue;
    }
    entry.flags = flags;
    datapath.update(MapRole::Ifaces, as_bytes_of(t.ifindex), as_bytes_of(entry));
    present.insert(t.ifindex);
  }
  // A device that is gone may come back under its ifindex as another one:
  // it must not inherit the mark.
  std::set<uint32_t> seen;
  for (const RedirectTarget& t : targets) seen.insert(t.ifindex);
  for (uint32_t ifindex : present) {
    sluice_iface entry{};
    if (seen.contains(ifindex) || !datapath.lookup(MapRole::Ifaces, as_bytes_of(ifindex), as_writable_bytes_of(entry)) ||
        !(entry.flags & SLUICE_IFACE_F_REDIRECT_OK))
      continue;
    entry.flags &= ~uint32_t{SLUICE_IFACE_F_REDIRECT_OK};
    datapath.update(MapRole::Ifaces, as_bytes_of(ifindex), as_bytes_of(entry));
  }
}

}  // namespace sluice::bpfmaps
