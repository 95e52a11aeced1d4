// `edgelm governor simulate --config POLICY.json [--minutes 30] [--csv out.csv]`: runs the
// simulated device (src/runtime/governor/simulate.h) under a policy with the synthetic
// workload of the file's "simulation" block, and prints a per-minute markdown table
// (temperature, tokens/s, device decode speed, requests on device / deferred / refused (to the
// cloud) / stopped mid-answer, plugged, battery, seconds of cool-down) and a summary line.
// --csv writes a sample every simulation.sample_s seconds (columns in simulate.h).
//
// `edgelm governor status [--sysfs-root DIR] [--config POLICY.json] [--json]`: reads the live
// sensors (sysfs; the root defaults to the policy's sysfs_root, else /sys) and prints every
// thermal zone and power supply, the readings the governor uses, and its decision for a new
// request under the policy (none: the "none" policy).
// Exit status: 0 ok, 1 error, 2 usage error.
#include "runtime/governor/governor.h"

#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/governor/policy.h"
#include "runtime/governor/sensors.h"
#include "runtime/governor/simulate.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

namespace gv = ::edgelm::governor;

struct SimulateOptions {
  std::string config;
  double minutes = 30;
  std::string csv;
};

int run_simulate(const SimulateOptions& o) {
  auto text = gv::read_text_file(o.config);
  if (!text.ok()) return report_error(text.status());
  auto policy = gv::parse_policy(*text, o.config);
  if (!policy.ok()) return report_error(policy.status());
  auto sim = gv::parse_simulation(*text, o.config);
  if (!sim.ok()) return report_error(sim.status());
  if (!(o.minutes > 0)) return report_error("--minutes must be > 0");
  const gv::SimulationResult r = gv::simulate(*policy, *sim, o.minutes * 60.0);
  fmt::print("policy: {} ({})\n", policy->name.empty() ? o.config : policy->name, o.config);
  fmt::print(
      "workload: {:.1f} requests/min x {} tokens, max wait {:.0f} s; device {:.0f} t/s at full "
      "clock\n\n",
      sim->workload.requests_per_min, sim->workload.tokens_per_request, sim->workload.max_wait_s,
      sim->device.base_tps);
  fmt::print("{}", gv::minutes_table(r));
  if (!o.csv.empty()) {
    std::ofstream out(o.csv, std::ios::binary | std::ios::trunc);
    const std::string csv = gv::samples_csv(r);
    out.write(csv.data(), static_cast<std::streamsize>(csv.size()));
    if (!out) return report_error(fmt::format("cannot write '{}'", o.csv));
  }
  return 0;
}

struct StatusOptions {
  std::string sysfs_root;
  std::string config;
  bool json = false;
};

int run_status(const StatusOptions& o) {
  gv::GovernorPolicy policy;
  policy.name = "none";
  if (!o.config.empty()) {
    auto p = gv::load_policy(o.config);
    if (!p.ok()) return report_error(p.status());
    policy = *p;
  }
  const std::string root = o.sysfs_root.empty() ? policy.sysfs_root : o.sysfs_root;
  auto sensor = std::make_shared<gv::SysfsSensor>(root, policy.thermal_types);
  auto readings = sensor->read();
  if (!readings.ok()) return report_error(readings.status());
  gv::Governor gov(policy, sensor);
  const gv::Decision d = gov.before_request(0);
  const gv::SensorReadings& r = *readings;
  if (o.json) {
    nlohmann::ordered_json j;
    j["sysfs_root"] = root;
    j["policy"] = policy.name.empty() ? o.config : policy.name;
    j["temp_c"] = r.temp_c ? nlohmann::json(*r.temp_c) : nlohmann::json(nullptr);
    j["battery_pct"] = r.battery_pct ? nlohmann::json(*r.battery_pct) : nlohmann::json(nullptr);
    j["plugged"] = r.plugged ? nlohmann::json(*r.plugged) : nlohmann::json(nullptr);
    j["zones"] = nlohmann::json::array();
    for (const auto& z : r.zones) {
      j["zones"].push_back({{"name", z.name}, {"type", z.type}, {"temp_c", z.temp_c}});
    }
    j["supplies"] = nlohmann::json::array();
    for (const auto& s : r.supplies) {
      nlohmann::ordered_json e;
      e["name"] = s.name;
      e["type"] = s.type;
      e["online"] = s.online ? nlohmann::json(*s.online) : nlohmann::json(nullptr);
      e["capacity_pct"] =
          s.capacity_pct ? nlohmann::json(*s.capacity_pct) : nlohmann::json(nullptr);
      e["status"] = s.status;
      j["supplies"].push_back(e);
    }
    j["warnings"] = r.warnings;
    j["decision"] = {{"action", gv::action_name(d.action)},
                     {"delay_ms", d.delay_ms},
                     {"code", d.code},
                     {"reason", d.reason}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("sysfs root: {}\n", root);
  for (const auto& z : r.zones) {
    fmt::print("  thermal  {:<16} {:<20} {:6.1f} C\n", z.name, z.type, z.temp_c);
  }
  for (const auto& s : r.supplies) {
    fmt::print("  power    {:<16} {:<20} online={} capacity={} status={}\n", s.name, s.type,
               s.online ? (*s.online ? "1" : "0") : "-",
               s.capacity_pct ? fmt::format("{:.0f}%", *s.capacity_pct) : "-",
               s.status.empty() ? "-" : s.status);
  }
  for (const auto& w : r.warnings) fmt::print("  warning: {}\n", w);
  fmt::print("temperature: {}\n", r.temp_c ? fmt::format("{:.1f} C", *r.temp_c) : "unknown");
  fmt::print("battery:     {}\n",
             r.battery_pct ? fmt::format("{:.0f}%", *r.battery_pct) : "unknown");
  fmt::print("plugged:     {}\n", r.plugged ? (*r.plugged ? "yes" : "no") : "unknown");
  fmt::print("policy:      {}\n", policy.name.empty() ? o.config : policy.name);
  fmt::print("decision:    {} ({})\n", gv::action_name(d.action), d.reason);
  return 0;
}

}  // namespace

void register_governor(CLI::App& app) {
  auto* gov =
      app.add_subcommand("governor", "Device policy: simulate it, show sensors and decision");
  gov->require_subcommand(1);

  auto so = std::make_shared<SimulateOptions>();
  auto* sim = gov->add_subcommand(
      "simulate", "Run the simulated device under a policy with a synthetic workload");
  sim->add_option("--config", so->config, "Policy JSON (with an optional \"simulation\" block)")
      ->required();
  sim->add_option("--minutes", so->minutes, "Simulated minutes (default 30)");
  sim->add_option("--csv", so->csv, "Write samples (every simulation.sample_s seconds) as CSV");
  sim->callback([so] { exit_with(run_simulate(*so)); });

  auto st = std::make_shared<StatusOptions>();
  auto* status = gov->add_subcommand("status", "Show live sensor readings and the decision");
  status->add_option("--sysfs-root", st->sysfs_root,
                     "sysfs root holding class/thermal and class/power_supply (default /sys)");
  status->add_option("--config", st->config, "Policy JSON (default: no limits)");
  status->add_flag("--json", st->json, "Print one JSON object");
  status->callback([st] { exit_with(run_status(*st)); });
}

}  // namespace edgelm::cli
