// The proxy's decisions that are pure logic: retries, the user_data
// encoding, the send-buffer pinning rule, buffer pool reuse, metrics,
// generated request ids, and per-request weighted routing through the
// routing unit with a seeded random source.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "config/compiler.h"
#include "config/loader.h"
#include "http/message_head.h"
#include "proxy/buffer_pool.h"
#include "proxy/byte_buffer.h"
#include "proxy/mesh_routing.h"
#include "proxy/metrics.h"
#include "proxy/outlier_registry.h"
#include "proxy/proxy.h"
#include "proxy/request_id.h"
#include "proxy/retry_policy.h"
#include "proxy/user_data.h"

namespace sluice::proxy {
namespace {

model::Retries retries(std::vector<std::string> on, uint32_t attempts = 2) {
  model::Retries r;
  r.attempts = attempts;
  r.retry_on = std::move(on);
  return r;
}

AttemptOutcome get_failed(AttemptFailure f, unsigned status = 0) {
  AttemptOutcome o;
  o.failure = f;
  o.status = status;
  o.idempotent = true;
  return o;
}

TEST(RetryPolicy, FiveXxCoversResponsesAndUpstreamFailures) {
  auto r = retries({"5xx"});
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::None, 500)));
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::ConnectFailure)));
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::Reset)));
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::Timeout)));
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::None, 404)));
}

TEST(RetryPolicy, GatewayErrorIsOnly502To504) {
  auto r = retries({"gateway-error"});
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::None, 500)));
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::None, 503)));
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::ConnectFailure)));
}

TEST(RetryPolicy, ConnectFailureTokenDoesNotCoverResets) {
  auto r = retries({"connect-failure"});
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::ConnectFailure)));
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::Reset)));
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::None, 503)));
}

TEST(RetryPolicy, ResetAndRefusedStreamCoverCloseBeforeHeaders) {
  auto r = retries({"refused-stream"});
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::Reset)));
  auto reset = retries({"reset"});
  EXPECT_TRUE(should_retry(&reset, get_failed(AttemptFailure::Timeout)));
}

// An HTTP/2 backend's REFUSED_STREAM (or a stream above its GOAWAY) was not
// processed: retried like a connect failure, even for a POST (gRPC).
TEST(RetryPolicy, RefusedStreamIsRetriedEvenForNonIdempotentRequests) {
  auto r = retries({"refused-stream"});
  AttemptOutcome post = get_failed(AttemptFailure::RefusedStream);
  post.idempotent = false;
  EXPECT_TRUE(should_retry(&r, post));
  AttemptOutcome reset = get_failed(AttemptFailure::Reset);
  reset.idempotent = false;
  EXPECT_FALSE(should_retry(&r, reset));   // a reset stream may have been processed
  auto connect = retries({"connect-failure"});
  EXPECT_FALSE(should_retry(&connect, post));
}

TEST(RetryPolicy, RetriableStatusCodesMatchExactly) {
  auto r = retries({"retriable-status-codes"});
  r.retriable_status_codes = {418};
  EXPECT_TRUE(should_retry(&r, get_failed(AttemptFailure::None, 418)));
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::None, 503)));
  auto numeric = retries({"503"});
  EXPECT_TRUE(should_retry(&numeric, get_failed(AttemptFailure::None, 503)));
}

TEST(RetryPolicy, StopsAfterAttempts) {
  auto r = retries({"5xx"}, 2);
  auto o = get_failed(AttemptFailure::None, 503);
  o.retries_done = 2;
  EXPECT_FALSE(should_retry(&r, o));
}

TEST(RetryPolicy, NeverRetriesANonIdempotentRequestThatMayHaveBeenSent) {
  auto r = retries({"5xx", "connect-failure", "reset"});
  auto post = get_failed(AttemptFailure::Reset);
  post.idempotent = false;
  EXPECT_FALSE(should_retry(&r, post));
  post.failure = AttemptFailure::None;
  post.status = 503;
  EXPECT_FALSE(should_retry(&r, post));
  post.failure = AttemptFailure::ConnectFailure;   // nothing was sent
  EXPECT_TRUE(should_retry(&r, post));
}

TEST(RetryPolicy, NeverRetriesAfterResponseBytesOrAStreamedBody) {
  auto r = retries({"5xx"});
  auto o = get_failed(AttemptFailure::Reset);
  o.response_started = true;
  EXPECT_FALSE(should_retry(&r, o));
  o = get_failed(AttemptFailure::ConnectFailure);
  o.body_streamed = true;
  EXPECT_FALSE(should_retry(&r, o));
  EXPECT_FALSE(should_retry(nullptr, get_failed(AttemptFailure::ConnectFailure)));
}

AttemptOutcome grpc_answered(uint32_t grpc_status) {
  AttemptOutcome o = get_failed(AttemptFailure::None, 200);
  o.grpc_status = grpc_status;
  o.idempotent = false;   // every gRPC call is a POST
  return o;
}

TEST(RetryPolicy, GrpcTokensMatchTheirStatusOnly) {
  const std::pair<const char*, uint32_t> tokens[] = {
      {"cancelled", 1}, {"deadline-exceeded", 4}, {"resource-exhausted", 8}, {"internal", 13}, {"unavailable", 14}};
  for (auto [token, code] : tokens) {
    auto r = retries({token});
    for (uint32_t status = 0; status <= 16; ++status) {
      EXPECT_EQ(should_retry(&r, grpc_answered(status)), status == code) << token << " grpc-status " << status;
    }
  }
}

TEST(RetryPolicy, GrpcTokensRetryAPostButNotAfterResponseBytesOrAttempts) {
  auto r = retries({"unavailable"}, 1);
  EXPECT_TRUE(should_retry(&r, grpc_answered(14)));
  AttemptOutcome started = grpc_answered(14);
  started.response_started = true;
  EXPECT_FALSE(should_retry(&r, started));
  AttemptOutcome streamed = grpc_answered(14);
  streamed.body_streamed = true;
  EXPECT_FALSE(should_retry(&r, streamed));
  AttemptOutcome last = grpc_answered(14);
  last.retries_done = 1;
  EXPECT_FALSE(should_retry(&r, last));
}

TEST(RetryPolicy, GrpcTokensIgnoreHttpStatusesAndResponsesWithoutGrpcStatus) {
  auto r = retries({"unavailable", "cancelled", "internal", "deadline-exceeded", "resource-exhausted"});
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::None, 503)));   // no grpc-status: not gRPC's
  EXPECT_FALSE(should_retry(&r, get_failed(AttemptFailure::Reset)));
  EXPECT_FALSE(should_retry(&r, grpc_answered(0)));
  // A 5xx token does not retry a gRPC error answered with HTTP 200.
  auto five = retries({"5xx"});
  EXPECT_FALSE(should_retry(&five, grpc_answered(14)));
}

TEST(RetryPolicy, IstioDefaultPolicyRetriesGrpcUnavailableAndCancelled) {
  // What the compiler puts on a route without retries (config/compiler.cc).
  auto r = retries({"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"});
  r.retriable_status_codes = {503};
  EXPECT_TRUE(should_retry(&r, grpc_answered(14)));
  EXPECT_TRUE(should_retry(&r, grpc_answered(1)));
  EXPECT_FALSE(should_retry(&r, grpc_answered(13)));
}

TEST(Metrics, GrpcResponseStatusIsALabelEmptyForOtherRequests) {
  WorkerMetrics m;
  RequestLabels http{"productpage", "productpage", "default", "v1", "productpage-v1-a"};
  RequestLabels grpc = http;
  grpc.grpc_status = 14;
  m.record_request(http, 200, "-", 1.0);
  m.record_request(grpc, 200, "-", 1.0);
  m.record_request(grpc, 200, "-", 1.0);
  const WorkerMetrics* workers[] = {&m};
  std::string text = WorkerMetrics::render_prometheus(workers);
  EXPECT_NE(text.find("istio_requests_total{reporter=\"waypoint\",request_protocol=\"grpc\",grpc_response_status=\"14\","),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("grpc_response_status=\"\","), std::string::npos) << text;
  EXPECT_NE(text.find("grpc_response_status=\"14\",destination_service=\"productpage\",destination_service_name=\"productpage\","
                      "destination_service_namespace=\"default\",destination_version=\"v1\",destination_workload=\"productpage-v1-a\","
                      "response_code=\"200\",response_flags=\"-\"} 2\n"),
            std::string::npos)
      << text;
}

TEST(UserData, RoundTripsOpGenerationAndId) {
  uint64_t v = encode_user_data(Op::Send, 0xabcdef, 0xfffffffe);
  UserData d = decode_user_data(v);
  EXPECT_EQ(d.op, Op::Send);
  EXPECT_EQ(d.generation, 0xabcdefu);
  EXPECT_EQ(d.id, 0xfffffffeu);
  EXPECT_EQ(decode_user_data(encode_user_data(Op::Recv, 0x1000000, 7)).generation, 0u);   // 24 bits
}

TEST(ByteBuffer, PinnedBufferIsNotCompactedUnderASend) {
  BufferPool pool(16);
  ByteBuffer b;
  b.bind(&pool);
  ASSERT_TRUE(b.append("0123456789"));
  const char* sending = b.readable().data();
  b.pin(true);
  b.consume(8);
  EXPECT_EQ(b.space(), 6u);                 // only the tail is free while pinned
  EXPECT_FALSE(b.append("abcdefg"));
  EXPECT_EQ(b.readable().data(), sending + 8);
  b.pin(false);
  EXPECT_EQ(b.space(), 14u);
  EXPECT_TRUE(b.append("abcdefghijklmn"));
  EXPECT_EQ(b.readable(), "89abcdefghijklmn");
}

// An idle connection holds no buffer: memory is taken on the first write
// and goes back once drained, never while a send may still read it.
TEST(ByteBuffer, TakesMemoryOnWriteAndGivesItBackWhenDrained) {
  BufferPool pool(64);
  ByteBuffer b;
  b.bind(&pool);
  EXPECT_FALSE(b.holds_memory());
  EXPECT_EQ(b.space(), 64u);
  ASSERT_TRUE(b.append("request"));
  EXPECT_EQ(pool.in_use(), 1u);
  b.release();                       // not empty: kept
  EXPECT_TRUE(b.holds_memory());
  b.pin(true);
  b.consume(7);
  b.release();                       // a send reads it: kept
  EXPECT_TRUE(b.holds_memory());
  b.pin(false);
  b.consume(0);
  b.release();
  EXPECT_FALSE(b.holds_memory());
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.cached(), 1u);
}

// Buffers given back stay mapped for reuse however many there are (a burst
// of HTTP/2 streams must not map and unmap one per request); only a trim
// after an interval in which none of them was taken unmaps them, down to
// the reserve.
TEST(BufferPool, KeepsWhatWasGivenBackUntilAQuietIntervalPasses) {
  BufferPool pool(4096);
  std::vector<char*> taken;
  for (int i = 0; i < 300; ++i) taken.push_back(pool.take());
  for (char* b : taken) pool.give_back(b);
  EXPECT_EQ(pool.cached(), 300u);
  pool.trim();                       // the interval just ending needed them
  EXPECT_EQ(pool.cached(), 300u);
  pool.trim();                       // a whole interval without a take
  EXPECT_EQ(pool.cached(), BufferPool::kReserve);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(Metrics, RendersIstioNamesSummedOverWorkers) {
  WorkerMetrics a, b;
  RequestLabels l{"productpage", "productpage", "default", "v1", "productpage-v1-a"};
  a.record_request(l, 200, "-", 3.0);
  b.record_request(l, 200, "-", 700.0);
  b.record_request(l, 503, "UO", 1.0);
  a.add(ProxyCounter::PoolOverflows, "productpage", "productpage-v1-a");
  const WorkerMetrics* workers[] = {&a, &b};
  std::string text = WorkerMetrics::render_prometheus(workers);
  EXPECT_NE(text.find("destination_version=\"v1\",destination_workload=\"productpage-v1-a\",response_code=\"200\","
                      "response_flags=\"-\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("response_code=\"503\",response_flags=\"UO\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("response_flags=\"-\",le=\"5\"} 1\n"), std::string::npos);      // 3 ms
  EXPECT_NE(text.find("response_flags=\"-\",le=\"1000\"} 2\n"), std::string::npos);   // cumulative
  EXPECT_NE(text.find("sluice_pool_overflows_total{destination_service=\"productpage\","
                      "destination_workload=\"productpage-v1-a\"} 1\n"),
            std::string::npos);
  auto totals = WorkerMetrics::totals(workers, "productpage");
  EXPECT_EQ(totals.requests, 3u);
  EXPECT_EQ(totals.by_code[503], 1u);
}

TEST(Metrics, SubsetTotalsKeepPortsApartAndCount5xxAsErrors) {
  WorkerMetrics a, b;
  RequestLabels on_9080{"productpage", "productpage", "default", "v1", "productpage-v1-a", 9080};
  RequestLabels on_9090 = on_9080;
  on_9090.port = 9090;
  a.record_request(on_9080, 200, "-", 3.0);
  b.record_request(on_9080, 503, "UO", 0.2);
  b.record_request(on_9090, 200, "-", 1e7);   // above every bucket bound
  const WorkerMetrics* workers[] = {&a, &b};
  auto totals = WorkerMetrics::subset_totals(workers);
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[0].port, 9080u);
  EXPECT_EQ(totals[0].version, "v1");
  EXPECT_EQ(totals[0].requests, 2u);
  EXPECT_EQ(totals[0].errors, 1u);
  EXPECT_EQ(totals[0].buckets[0], 1u);   // 0.2 ms: le 0.5
  EXPECT_EQ(totals[0].buckets[2], 1u);   // 3 ms: le 5
  EXPECT_EQ(totals[1].buckets.back(), 1u);
  // The port is not an Istio label: the rendered series stay one per label set.
  std::string text = WorkerMetrics::render_prometheus(workers);
  EXPECT_NE(text.find("response_code=\"200\",response_flags=\"-\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("response_flags=\"-\",le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("response_flags=\"-\",le=\"3600000\"} 1\n"), std::string::npos) << text;
}

TEST(Metrics, PoolCountersAreLabelledWithTheirSubsetCluster) {
  WorkerMetrics a, b;
  a.add(ProxyCounter::PoolOverflows, "productpage", "productpage-shared", 1, "single");
  b.add(ProxyCounter::PoolOverflows, "productpage", "productpage-shared", 1, "single");
  b.add(ProxyCounter::PoolOverflows, "productpage", "productpage-shared", 1, "reused");
  a.add(ProxyCounter::UpstreamConnectionsActive, "productpage", "productpage-shared", 1, "single");
  b.add(ProxyCounter::UpstreamConnectionsActive, "productpage", "productpage-shared", 1, "single");
  a.add(ProxyCounter::UpstreamConnectionsActive, "productpage", "productpage-shared", -1, "single");
  const WorkerMetrics* workers[] = {&a, &b};
  std::string text = WorkerMetrics::render_prometheus(workers);
  EXPECT_NE(text.find("sluice_pool_overflows_total{destination_service=\"productpage\",destination_version=\"single\","
                      "destination_workload=\"productpage-shared\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_pool_overflows_total{destination_service=\"productpage\",destination_version=\"reused\","
                      "destination_workload=\"productpage-shared\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE sluice_upstream_connections_active gauge\n"
                      "sluice_upstream_connections_active{destination_service=\"productpage\","
                      "destination_version=\"single\",destination_workload=\"productpage-shared\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(MeshRouter, WeightsApplyPerRequestWithASeededSource) {
  model::PortRoutes routes;
  model::HttpRoute route;
  route.route.resize(2);
  route.route[0].destination.subset = 1;
  route.route[0].weight = 70;
  route.route[0].share = 0.7;
  route.route[1].destination.subset = 2;
  route.route[1].weight = 30;
  route.route[1].share = 0.3;
  routes.http.push_back(route);
  http::RequestHead head;
  ASSERT_EQ(http::parse_request_head("GET / HTTP/1.1\r\nHost: productpage\r\n\r\n", http::Limits{}, head),
            http::ParseResult::Complete);
  RequestView view{head, head.target, head.authority, 9080};
  MeshRouter router;
  lb::SeededRandom random(42);
  std::map<uint32_t, int> picks;
  for (int i = 0; i < 10000; ++i) ++picks[router.route(routes, view, random).destination->destination.subset];
  // 10,000 draws: σ of the share is 0.46 points; ±1.5 points is 3.3σ.
  EXPECT_NEAR(picks[1] / 100.0, 70.0, 1.5);
  EXPECT_EQ(picks[1] + picks[2], 10000);
}

// consistentHash {useSourceIp: true}: the picker hashes the client address
// the worker passes in RequestView::source, so one client stays on one
// endpoint and different clients spread over the subset.
TEST(MeshPicker, SourceIpHashPinsEachClientToOneEndpoint) {
  model::Snapshot snapshot;
  model::Service& service = snapshot.services.emplace_back();
  service.host = "productpage";
  model::Subset& subset = service.subsets.emplace_back();
  for (uint32_t i = 0; i < 8; ++i) {
    model::Endpoint& e = service.endpoints.emplace_back();
    e.name = "endpoint-" + std::to_string(i);
    e.address = *model::IpAddress::parse("10.200.11." + std::to_string(i + 2));
    subset.endpoints.push_back(i);
  }
  model::LoadBalancer& lb = subset.policy_by_port[9080].load_balancer;
  lb.algorithm = model::LbAlgorithm::RingHash;
  lb.hash.source = model::HashKey::Source::SourceIp;
  struct AllHealthy final : EndpointHealth {
    bool is_ejected(const model::Destination&, uint32_t) const override { return false; }
  } load;
  lb::SeededRandom random(7);
  MeshPicker picker(random, {});
  picker.on_snapshot(snapshot);
  http::RequestHead head;
  ASSERT_EQ(http::parse_request_head("GET / HTTP/1.1\r\nHost: productpage\r\n\r\n", http::Limits{}, head),
            http::ParseResult::Complete);
  std::set<uint32_t> used;
  for (int client = 0; client < 32; ++client) {
    RequestView view{head, head.target, head.authority, 9080,
                     *model::IpAddress::parse("10.200.1." + std::to_string(client + 2))};
    auto first = picker.pick(snapshot, model::Destination{0, 0, 9080}, view, load);
    ASSERT_TRUE(first.has_value());
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(picker.pick(snapshot, model::Destination{0, 0, 9080}, view, load), first)
          << "client 10.200.1." << client + 2 << " moved on request " << i;
    }
    used.insert(*first);
  }
  // 32 clients on 8 endpoints: all on one endpoint would mean the address is not hashed.
  EXPECT_GE(used.size(), 3u);
}

// The demo's lost requests: the first request a worker routed to a backend
// it had not met resolved the backend's active-request counter on the
// worker thread, and the agent's BPF adapter scans a kernel map for it, one
// syscall per backend id: every connection of the worker stalled for
// seconds. Counters are now resolved by update_snapshot, on the caller's
// thread, before workers can see the snapshot; workers only look them up.
TEST(ProxyActiveCounters, ResolvedByUpdateSnapshotNotByWorkers) {
  struct RecordingCounters final : ActiveRequestCounters {
    std::atomic<int64_t>* counter_for(const model::IpAddress& address, uint32_t port) override {
      calls.emplace_back(address.to_string() + ":" + std::to_string(port), std::this_thread::get_id());
      return memory.counter_for(address, port);
    }
    std::vector<std::pair<std::string, std::thread::id>> calls;
    InMemoryActiveRequests memory;
  };
  auto snapshot_with = [](std::vector<std::string> addresses) {
    auto snapshot = std::make_shared<model::Snapshot>();
    model::Service& service = snapshot->services.emplace_back();
    service.host = "productpage";
    service.ports.push_back(model::ServicePort{9080, model::Protocol::HTTP, "http", 0});
    for (const auto& a : addresses) service.endpoints.emplace_back().address = *model::IpAddress::parse(a);
    return model::SnapshotPtr(snapshot);
  };
  auto counters = std::make_shared<RecordingCounters>();
  ProxyOptions options;
  options.workers = 1;
  options.listeners = {{"127.77.0.1:18089", "productpage", 9080}};
  options.active_requests = counters;
  Proxy proxy(options, snapshot_with({"10.200.11.2"}));
  ASSERT_EQ(counters->calls.size(), 1u);
  EXPECT_EQ(counters->calls[0].first, "10.200.11.2:9080");

  // v2's endpoints appear with the weight change: resolved here, once each.
  proxy.update_snapshot(snapshot_with({"10.200.11.2", "10.200.13.2", "10.200.14.2"}));
  ASSERT_EQ(counters->calls.size(), 3u);
  EXPECT_EQ(counters->calls[1].first, "10.200.13.2:9080");
  EXPECT_EQ(counters->calls[2].first, "10.200.14.2:9080");
  for (const auto& [backend, thread] : counters->calls) EXPECT_EQ(thread, std::this_thread::get_id()) << backend;

  // What a worker gets is the resolved counter, without another call.
  auto* v2a = proxy.active_counter(*model::IpAddress::parse("10.200.13.2"), 9080);
  EXPECT_EQ(v2a, counters->memory.counter_for(*model::IpAddress::parse("10.200.13.2"), 9080));
  EXPECT_EQ(counters->calls.size(), 3u);
}

// A worker's slots must not keep an old snapshot (a whole config) alive once
// a new one is published: an HTTP/2 stream's slot, kept as a spare with the
// snapshot it served (so that the next stream costs no reference-count
// atomics), and an idle HTTP/1.1 keep-alive connection both let it go.
TEST(ProxySnapshots, ReleasedBySlotsOutsideAnExchangeAfterAnUpdate) {
  // The Istio config as users write it, compiled as the agent does.
  auto snapshot_with = [](uint32_t port) {
    const std::string yaml = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: productpage}
spec:
  hosts: [productpage]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.77.0.8, ports: {http: )" + std::to_string(port) + "}}]\n";
    auto result = config::compile(config::parse_sources({{"productpage.yaml", yaml}}), port);
    EXPECT_TRUE(result.ok());
    return result.snapshot;
  };
  // Nothing listens on 127.77.0.8 (ports 9, 10): each request is answered 503.
  auto first = snapshot_with(9);
  std::weak_ptr<const model::Snapshot> watch = first;
  ProxyOptions options;
  options.workers = 1;
  options.listeners = {{"127.77.0.7:18097", "productpage", 9080}};
  Proxy proxy(options, std::move(first));
  proxy.start();

  // An HTTP/1.1 connection left open after its response.
  const int h1 = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(18097);
  inet_pton(AF_INET, "127.77.0.7", &to.sin_addr);
  bool connected = false;
  for (int i = 0; i < 100 && !connected; ++i) {
    connected = ::connect(h1, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
    if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(connected);
  const std::string request = "GET / HTTP/1.1\r\nhost: productpage\r\n\r\n";
  ASSERT_EQ(::send(h1, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  char reply[512];
  const ssize_t got = ::recv(h1, reply, sizeof reply - 1, 0);
  ASSERT_GT(got, 0);
  EXPECT_TRUE(std::string_view(reply, static_cast<size_t>(got)).starts_with("HTTP/1.1 503"));

  // Two HTTP/2 streams over one connection (nghttp, prior knowledge).
  FILE* nghttp = ::popen("nghttp -n -s http://127.77.0.7:18097/a http://127.77.0.7:18097/b 2>&1 | "
                         "awk '$NF == \"/a\" || $NF == \"/b\" { print $(NF - 2), $NF }' | sort", "r");
  ASSERT_NE(nghttp, nullptr);
  std::string out;
  char line[128];
  while (std::fgets(line, sizeof line, nghttp) != nullptr) out += line;
  ASSERT_EQ(::pclose(nghttp), 0) << out;
  EXPECT_EQ(out, "503 /a\n503 /b\n");

  proxy.update_snapshot(snapshot_with(10));
  // Workers pick the new snapshot up on their 10 ms tick.
  for (int i = 0; i < 200 && !watch.expired(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(watch.expired()) << "the first snapshot is still held, " << watch.use_count() << " reference(s)";
  ::close(h1);
}

// ---- outlier detection shared by the workers ----------------------------------

class ManualClock final : public lb::MonotonicClock {
 public:
  TimePoint now() const override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  TimePoint now_{std::chrono::seconds(1000)};
};

// One service with `hosts` endpoints in subset 0 (port 9080), outlier detection as given.
model::SnapshotPtr outlier_snapshot(uint32_t hosts, uint32_t consecutive_5xx, uint32_t max_percent,
                                    std::string first_address = "10.200.11.2") {
  auto snapshot = std::make_shared<model::Snapshot>();
  model::Service& service = snapshot->services.emplace_back();
  service.host = "productpage";
  service.ports.push_back(model::ServicePort{9080, model::Protocol::HTTP, "http", 0});
  model::Subset& subset = service.subsets.emplace_back();
  subset.name = "v1";
  for (uint32_t i = 0; i < hosts; ++i) {
    std::string address = i == 0 ? first_address : "10.200.12." + std::to_string(i + 2);
    service.endpoints.emplace_back().address = *model::IpAddress::parse(address);
    subset.endpoints.push_back(i);
  }
  model::OutlierDetection& od = subset.policy_by_port[9080].outlier_detection;
  od.enabled = true;
  od.consecutive_5xx_errors = consecutive_5xx;
  od.consecutive_gateway_errors = 0;
  od.max_ejection_percent = max_percent;
  od.interval = std::chrono::seconds(1);
  od.base_ejection_time = std::chrono::seconds(30);
  return snapshot;
}

const model::Destination kV1{0, 0, 9080};

TEST(OutlierRegistry, ConsecutiveErrorsFromAllWorkersAddUp) {
  ManualClock clock;
  auto snapshot = outlier_snapshot(4, 6, 100);
  OutlierRegistry registry(*snapshot, nullptr, clock);
  // Two workers report three 503s each for endpoint 1, concurrently: the
  // sixth consecutive error ejects it, wherever it came from.
  std::atomic<int> ejections{0};
  auto worker = [&] {
    for (int i = 0; i < 3; ++i) ejections += registry.report_status(kV1, 1, 503) ? 1 : 0;
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  EXPECT_TRUE(registry.is_ejected(kV1, 1));
  EXPECT_EQ(ejections.load(), 1);   // exactly one report was the ejecting one
  EXPECT_FALSE(registry.is_ejected(kV1, 0));
}

TEST(OutlierRegistry, MaxEjectionPercentCountsTheWholeSubsetNotAWorker) {
  ManualClock clock;
  auto snapshot = outlier_snapshot(4, 1, 50);   // 50% of 4 hosts: at most 2 ejected
  OutlierRegistry registry(*snapshot, nullptr, clock);
  // Each "worker" sees a different endpoint fail; per-worker accounting
  // would let every one of them eject its own.
  std::vector<std::thread> workers;
  for (uint32_t e = 0; e < 4; ++e) workers.emplace_back([&, e] { registry.report_status(kV1, e, 502); });
  for (auto& t : workers) t.join();
  int ejected = 0;
  for (uint32_t e = 0; e < 4; ++e) ejected += registry.is_ejected(kV1, e) ? 1 : 0;
  EXPECT_EQ(ejected, 2);
  EXPECT_EQ(registry.find(kV1)->counters().ejections_overflow, 2u);
}

// Envoy >= 1.31 (without always_eject_one_host): 100 * (ejected + 1) / hosts
// must not exceed maxEjectionPercent, so Istio's default 10% ejects nothing
// in a subset of fewer than 10 hosts, and one host of 10.
TEST(OutlierRegistry, TenPercentEjectsNothingBelowTenHostsAndOneOfTen) {
  ManualClock clock;
  auto nine = outlier_snapshot(9, 1, 10);
  OutlierRegistry small(*nine, nullptr, clock);
  EXPECT_FALSE(small.report_status(kV1, 0, 503));
  EXPECT_FALSE(small.is_ejected(kV1, 0));
  auto ten = outlier_snapshot(10, 1, 10);
  OutlierRegistry large(*ten, nullptr, clock);
  EXPECT_TRUE(large.report_status(kV1, 0, 503));
  EXPECT_FALSE(large.report_status(kV1, 1, 503));
  EXPECT_TRUE(large.is_ejected(kV1, 0));
  EXPECT_FALSE(large.is_ejected(kV1, 1));
}

TEST(OutlierRegistry, AnEjectedHostStaysEjectedAcrossASnapshotWithTheSameHosts) {
  ManualClock clock;
  auto first = outlier_snapshot(4, 1, 100);
  OutlierRegistry before(*first, nullptr, clock);
  ASSERT_TRUE(before.report_status(kV1, 2, 503));
  // A weight shift compiles a new snapshot with the same subset: same detector.
  auto same = outlier_snapshot(4, 1, 100);
  OutlierRegistry after(*same, &before, clock);
  EXPECT_TRUE(after.is_ejected(kV1, 2));
  // A subset whose hosts changed starts afresh.
  auto moved = outlier_snapshot(4, 1, 100, "10.200.99.2");
  OutlierRegistry fresh(*moved, &after, clock);
  EXPECT_FALSE(fresh.is_ejected(kV1, 2));
}

TEST(OutlierRegistry, SweepReturnsHostsAfterBaseEjectionTime) {
  ManualClock clock;
  auto snapshot = outlier_snapshot(2, 1, 100);
  OutlierRegistry registry(*snapshot, nullptr, clock);
  ASSERT_TRUE(registry.report_status(kV1, 0, 500));
  clock.advance(std::chrono::seconds(29));
  registry.sweep_if_due();
  EXPECT_TRUE(registry.is_ejected(kV1, 0));
  clock.advance(std::chrono::seconds(2));
  registry.sweep_if_due();
  EXPECT_FALSE(registry.is_ejected(kV1, 0));
}

TEST(OutlierRegistry, SubsetsWithoutOutlierDetectionNeverEject) {
  ManualClock clock;
  auto snapshot = outlier_snapshot(2, 1, 100);
  const model::Destination other_port{0, 0, 9081};
  OutlierRegistry registry(*snapshot, nullptr, clock);
  EXPECT_FALSE(registry.report_status(other_port, 0, 503));
  EXPECT_FALSE(registry.is_ejected(other_port, 0));
  EXPECT_EQ(registry.find(other_port), nullptr);
}

TEST(RequestId, IsAVersion4UuidOfTheGivenBitsInOrder) {
  RequestId id;
  format_uuid4(0, 0, id);
  EXPECT_EQ(view_of(id), "00000000-0000-4000-8000-000000000000");   // only version and variant bits set
  format_uuid4(~uint64_t{0}, ~uint64_t{0}, id);
  EXPECT_EQ(view_of(id), "ffffffff-ffff-4fff-bfff-ffffffffffff");   // version and variant bits cleared
  format_uuid4(0x0123456789abcdefULL, 0xfedcba9876543210ULL, id);
  EXPECT_EQ(view_of(id), "01234567-89ab-4def-bedc-ba9876543210");
}

TEST(RequestId, DistinctRandomBitsGiveDistinctIds) {
  lb::SeededRandom random(7);
  std::set<std::string> ids;
  RequestId id;
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t high = random.next();
    format_uuid4(high, random.next(), id);
    ids.emplace(view_of(id));
  }
  EXPECT_EQ(ids.size(), 10'000u);
}

}  // namespace
}  // namespace sluice::proxy
