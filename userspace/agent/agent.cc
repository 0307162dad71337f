#include "agent/agent.h"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <set>

namespace sluice::agent {

Agent::Agent(CompileFn compile, OverrideFn override_weights, std::vector<DataPlane*> planes)
    : compile_(std::move(compile)), override_weights_(std::move(override_weights)), planes_(std::move(planes)) {}

bool Agent::apply_everywhere(const model::SnapshotPtr& next, std::string& error) {
  // Planes are applied in order; if one refuses, the ones already switched go
  // back to the serving snapshot so both planes always agree.
  for (size_t i = 0; i < planes_.size(); ++i) {
    try {
      planes_[i]->apply(next);
    } catch (const std::exception& e) {
      error = planes_[i]->name() + ": " + e.what();
      for (size_t j = 0; j < i && serving_; ++j) {
        try {
          planes_[j]->apply(serving_);
        } catch (const std::exception& again) {
          spdlog::critical("{}: cannot return to version {}: {}", planes_[j]->name(), serving_->version,
                           again.what());
        }
      }
      return false;
    }
  }
  return true;
}

bool Agent::reload_from_files() {
  std::lock_guard lock(mu_);
  CompileOutcome out;
  try {
    out = compile_(next_version_);
  } catch (const std::exception& e) {
    // Whatever the reading or compiling threw (it runs on the watcher
    // thread, where an escaping exception would end the process) refuses
    // this change like a config error.
    out = CompileOutcome{nullptr, {model::Diagnostic{model::Severity::Error, {}, std::string("reading the config failed: ") + e.what()}}};
  }
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  for (const auto& d : out.diagnostics) {
    (d.severity == model::Severity::Error ? errors : warnings).push_back(model::format_diagnostic(d));
  }
  if (!out.snapshot || !errors.empty()) {
    if (errors.empty()) errors.push_back("config compiler produced no snapshot");
    for (const auto& e : errors) spdlog::error("config refused: {}", e);
    spdlog::warn("config refused; still serving version {}", serving_ ? serving_->version : 0);
    status_.last_error = ReloadError{std::chrono::system_clock::now(), errors};
    ++status_.reloads_failed;
    log_change(serving_ ? serving_->version : 0, "refused", errors.front());
    return false;
  }
  ++next_version_;
  // Overrides whose routes the files left as they were stay in force (a
  // canary shift survives an unrelated edit or an endpoint change); one whose
  // routes changed there, weights included, gives way to the files.
  model::SnapshotPtr next = out.snapshot;
  std::map<std::string, SubsetWeights> kept;
  std::map<std::string, std::vector<std::string>> kept_views;
  for (const auto& [host, weights] : status_.overrides) {
    const std::string before = from_files_ ? route_destinations(*from_files_, host) : std::string();
    if (before.empty() || before != route_destinations(*out.snapshot, host)) {
      spdlog::info("weight override on {} dropped: its routes changed in the files", host);
      continue;
    }
    OverrideOutcome o = override_weights_(*next, host, weights, out.snapshot->version);
    if (!o.snapshot) {
      spdlog::warn("weight override on {} dropped: {}", host, o.error);
      continue;
    }
    next = o.snapshot;
    kept[host] = weights;
    if (!o.views_kept.empty()) kept_views[host] = std::move(o.views_kept);
  }
  std::string error;
  if (!apply_everywhere(next, error)) {
    spdlog::error("config version {} not applied ({}); still serving version {}", next->version, error,
                  serving_ ? serving_->version : 0);
    status_.last_error = ReloadError{std::chrono::system_clock::now(), {error}};
    ++status_.reloads_failed;
    log_change(serving_ ? serving_->version : 0, "refused", error);
    return false;
  }
  for (const auto& w : warnings) spdlog::warn("{}", w);
  std::string what = describe_changes(serving_.get(), *next);
  // out.snapshot->origin says where the routes came from: "files",
  // "kubernetes" or "files+kubernetes".
  spdlog::info("config version {} applied from {}{}: {}", next->version, out.snapshot->origin,
               kept.empty() ? "" : fmt::format(" (keeping {} weight override(s))", kept.size()), what);
  log_change(next->version, out.snapshot->origin, std::move(what));
  serving_ = next;
  from_files_ = out.snapshot;
  status_.version = serving_->version;
  status_.origin = serving_->origin;
  status_.applied_at = std::chrono::system_clock::now();
  status_.overrides = std::move(kept);
  status_.override_views_kept = std::move(kept_views);
  status_.last_error.reset();
  status_.warnings = std::move(warnings);
  ++status_.reloads_ok;
  return true;
}

std::string Agent::set_weights(const std::string& host, const SubsetWeights& weights) {
  std::lock_guard lock(mu_);
  if (!serving_) return "no configuration is serving yet";
  OverrideOutcome out = override_weights_(*serving_, host, weights, next_version_);
  if (!out.snapshot) return out.error.empty() ? "override refused" : out.error;
  ++next_version_;
  std::string error;
  if (!apply_everywhere(out.snapshot, error)) return error;
  std::string what = describe_changes(serving_.get(), *out.snapshot);
  for (const auto& v : out.views_kept) what += "; clients of " + v + " keep the files' weights";
  spdlog::info("config version {} applied from override: {}", out.snapshot->version, what);
  log_change(out.snapshot->version, "override", std::move(what));
  serving_ = out.snapshot;
  status_.version = serving_->version;
  status_.origin = serving_->origin;
  status_.applied_at = std::chrono::system_clock::now();
  status_.overrides[host] = weights;
  if (out.views_kept.empty()) status_.override_views_kept.erase(host);
  else status_.override_views_kept[host] = out.views_kept;
  return {};
}

model::SnapshotPtr Agent::current() const {
  std::lock_guard lock(mu_);
  return serving_;
}

AgentStatus Agent::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

std::vector<ConfigChange> Agent::changes() const {
  std::lock_guard lock(mu_);
  return {changes_.begin(), changes_.end()};
}

void Agent::log_change(uint64_t version, std::string kind, std::string what) {
  changes_.push_back({version, std::chrono::system_clock::now(), std::move(kind), std::move(what)});
  if (changes_.size() > kMaxChanges) changes_.pop_front();
}

namespace {

std::string weights_of(const model::Snapshot& s, const model::Service& svc,
                       const std::vector<model::WeightedDestination>& dests) {
  std::string out;
  for (const auto& d : dests) {
    if (!out.empty()) out += ' ';
    const auto& target = s.services[d.destination.service];
    const std::string& subset = target.subsets[d.destination.subset].name;
    if (&target != &svc) out += target.host + '/';
    out += subset.empty() ? "(all)" : subset;
    out += '=' + std::to_string(d.weight);
  }
  return out;
}

}  // namespace

std::string route_destinations(const model::Snapshot& snapshot, const std::string& host) {
  const model::Service* svc = snapshot.find_service(host);
  if (!svc) return {};
  std::string out;
  auto add = [&](const std::vector<model::PortRoutes>& routes) {
    for (const auto& pr : routes) {
      out += std::to_string(pr.port) + ":";
      out += "l4[" + weights_of(snapshot, *svc, pr.l4) + "]";
      for (const auto& h : pr.http) out += " http[" + weights_of(snapshot, *svc, h.route) + "]";
      out += ";";
    }
  };
  // The default view's routes only. A client view the override follows
  // (weight_override.h) takes its routes from the same VirtualService, so a
  // file change of their weights shows here too; a namespace that gains or
  // loses a DestinationRule of its own (a view coming or going) is not a
  // change of what the override says, and the reload applies the override
  // to the views it then finds (or drops it if one lacks a named subset).
  add(svc->routes);
  return out;
}

std::string describe_changes(const model::Snapshot* before, const model::Snapshot& after) {
  if (!before) {
    size_t endpoints = 0;
    for (const auto& s : after.services) endpoints += s.endpoints.size();
    return std::to_string(after.services.size()) + " services, " + std::to_string(endpoints) + " endpoints";
  }
  std::vector<std::string> parts;
  std::set<std::string> old_hosts;
  for (const auto& s : before->services) old_hosts.insert(s.host);
  int added = 0;
  int removed = 0;
  for (const auto& s : after.services) {
    if (!old_hosts.count(s.host)) ++added;
  }
  for (const auto& s : before->services) {
    if (!after.find_service(s.host)) ++removed;
  }
  if (added || removed) parts.push_back("services +" + std::to_string(added) + " -" + std::to_string(removed));
  for (const auto& now : after.services) {
    const model::Service* was = before->find_service(now.host);
    if (!was) continue;
    if (was->endpoints.size() != now.endpoints.size()) {
      parts.push_back(now.host + " endpoints " + std::to_string(was->endpoints.size()) + "->" +
                      std::to_string(now.endpoints.size()));
    }
    for (const auto& r : now.routes) {
      const model::PortRoutes* old_r = was->routes_for(r.port);
      if (!old_r) {
        parts.push_back(now.host + ":" + std::to_string(r.port) + " new port");
        continue;
      }
      // One "a=1 b=2" group per destination list: the L4 list, then each http route's.
      auto lists = [](const model::Snapshot& snap, const model::Service& svc, const model::PortRoutes& pr) {
        std::string out;
        auto add = [&](const std::vector<model::WeightedDestination>& dests) {
          if (dests.empty()) return;
          out += (out.empty() ? "" : " | ") + weights_of(snap, svc, dests);
        };
        add(pr.l4);
        for (const auto& h : pr.http) add(h.route);
        return out;
      };
      std::string a = lists(*before, *was, *old_r);
      std::string b = lists(after, now, r);
      if (old_r->http.size() != r.http.size()) {
        parts.push_back(now.host + ":" + std::to_string(r.port) + " http routes " +
                        std::to_string(old_r->http.size()) + "->" + std::to_string(r.http.size()));
      }
      if (a != b) parts.push_back(now.host + ":" + std::to_string(r.port) + " weights " + a + " -> " + b);
    }
  }
  if (parts.empty()) return "no routing change";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace sluice::agent
