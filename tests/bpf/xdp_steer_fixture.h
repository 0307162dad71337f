// A loaded sluice_steer program with its own pin directory, the productpage
// tables applied, and BPF_PROG_TEST_RUN helpers. The program runs with
// SLUICE_CTRL_F_SKIP_FIB so a DNATed packet's verdict is XDP_TX whatever the
// host's routes are; the fib path has its own test in a private netns.
#pragma once

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "bpf/packet_builder.h"
#include "bpf/productpage_snapshot.h"
#include "bpfmaps/bpf_datapath.h"
#include "bpfmaps/datapath_report.h"
#include "bpfmaps/table_writer.h"
#include "common/privilege.h"

namespace sluice::testing {

inline bool ensure_bpffs() {
  struct statfs fs {};
  if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC) return true;
  return mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) == 0;
}

struct TestRun {
  int verdict = -1;
  Frame out;
};

// One BPF_PROG_TEST_RUN of an XDP program on `in`.
inline TestRun run_xdp(int prog_fd, const Frame& in) {
  TestRun result;
  result.out.resize(in.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = in.data();
  opts.data_size_in = static_cast<uint32_t>(in.size());
  opts.data_out = result.out.data();
  opts.data_size_out = static_cast<uint32_t>(result.out.size());
  opts.repeat = 1;
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN failed: " << strerror(errno);
  result.verdict = static_cast<int>(opts.retval);
  result.out.resize(opts.data_size_out);
  return result;
}

class XdpSteerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_ROOT();
    SLUICE_REQUIRE(ensure_bpffs(), "bpffs at /sys/fs/bpf");
    bpfmaps::DatapathOptions options;
    options.pin_dir = fmt::format("/sys/fs/bpf/slc-bpf-test-{}", getpid());
    options.conntrack_flows = 65536;
    options.skip_fib = true;
    datapath_ = std::make_unique<bpfmaps::BpfDatapath>(options);
    datapath_->load();
    writer_ = std::make_unique<bpfmaps::TableWriter>(*datapath_, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)});
  }

  void TearDown() override {
    if (datapath_) datapath_->unpin_all();
  }

  bpfmaps::ApplyResult apply(const ProductpageOptions& options = {}) {
    return writer_->apply(productpage_snapshot(options));
  }

  TestRun run(const Frame& in) { return run_xdp(datapath_->xdp_program_fd(), in); }

  TestRun run(const PacketSpec& spec) { return run(build_packet(spec)); }

  uint64_t global(uint32_t index) const { return bpfmaps::global_counter(*datapath_, index); }
  size_t conntrack_size() const { return datapath_->keys(bpfmaps::MapRole::Conntrack).size(); }
  size_t reverse_nat_size() const { return datapath_->keys(bpfmaps::MapRole::ReverseNat).size(); }

  std::optional<sluice_ct_entry> conntrack_of(const PacketSpec& spec) const {
    sluice_flow_key key = flow_key_of(spec);
    sluice_ct_entry entry{};
    if (!datapath_->lookup(bpfmaps::MapRole::Conntrack, bpfmaps::as_bytes_of(key), bpfmaps::as_writable_bytes_of(entry)))
      return std::nullopt;
    return entry;
  }

  // "10.200.11.2:9081/tcp" of the backend the flow was given, "" if none.
  std::string backend_of(const PacketSpec& spec) const {
    auto entry = conntrack_of(spec);
    if (!entry) return "";
    auto it = writer_->backends().find(entry->backend_id);
    return it == writer_->backends().end() ? "?" : it->second.to_string();
  }

  // The frame the program should emit for `spec` DNATed to `backend`.
  static Frame expected_dnat(PacketSpec spec, const bpfmaps::BackendIdentity& backend) {
    spec.dst = backend.address.to_string();
    spec.dport = backend.port;
    spec.partial_checksum = false;
    return build_packet(spec);
  }

  sluice_counters subset_counters(const std::string& subset) const {
    for (const auto& [slot, name] : writer_->subset_slots())
      if (name.subset == subset && name.port == 9081) return bpfmaps::sum_counters(*datapath_, bpfmaps::MapRole::SubsetStats, slot);
    return {};
  }

  std::unique_ptr<bpfmaps::BpfDatapath> datapath_;
  std::unique_ptr<bpfmaps::TableWriter> writer_;
};

}  // namespace sluice::testing
