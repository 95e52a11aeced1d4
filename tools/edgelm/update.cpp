// `edgelm update --from URL|DIR --models DIR [--pubkey KEY.pub] [--version V]
//  [--allow-downgrade] [--full] [--keep N] [--retries N] [--connect-timeout S]
//  [--stall-timeout S] [--json]`: installs the release's latest (or V) into the models folder
// by the smallest download (delta chain or full file), resuming interrupted transfers.
// `edgelm rollback --models DIR`: the previous version becomes current again.
// `edgelm models --models DIR [--json] [--no-verify] [--current-path]`: installed versions.
// Layout of the models folder and of release directories: docs/releases.md.
// Exit status: 0 ok (also "already up to date"), 1 error (message on stderr), 2 usage error.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "runtime/update/file-util.h"
#include "runtime/update/installer.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

int run_update(update::UpdateOptions o, bool json, bool quiet) {
  const bool tty = ::isatty(2) != 0;
  if (!quiet) {
    o.log = [tty](const std::string& line) {
      fmt::print(stderr, "{}{}\n", tty ? "\r\033[K" : "", line);
    };
    auto last = std::make_shared<std::chrono::steady_clock::time_point>();
    auto last_pct = std::make_shared<int>(-1);
    o.fetch.progress = [tty, last, last_pct](uint64_t done, uint64_t total) {
      const int pct =
          total ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total))
                : 0;
      const auto now = std::chrono::steady_clock::now();
      if (tty) {
        if (now - *last < std::chrono::milliseconds(100) && done != total) return;
        *last = now;
        fmt::print(stderr, "\r\033[K  {:3d}%  {} / {}", pct, update::human_bytes(done),
                   update::human_bytes(total));
        if (done == total) fmt::print(stderr, "\n");
      } else if (pct / 25 != *last_pct / 25 || done == total) {  // a line per quarter
        if (pct == *last_pct) return;
        *last_pct = pct;
        fmt::print(stderr, "  {:3d}%  {} / {}\n", pct, update::human_bytes(done),
                   update::human_bytes(total));
      }
    };
  }
  auto r = update::update_model(o);
  if (!r.ok()) return report_error(r.status());
  if (json) {
    nlohmann::json plan = nlohmann::json::array();
    for (const auto& s : r->plan) {
      plan.push_back({{"kind", s.kind},
                      {"from_version", s.from_version},
                      {"to_version", s.to_version},
                      {"bytes", s.bytes}});
    }
    nlohmann::json j = {{"from_version", r->from_version},
                        {"to_version", r->to_version},
                        {"changed", r->changed},
                        {"plan", plan},
                        {"download_bytes", r->download_bytes},
                        {"full_bytes", r->full_bytes},
                        {"bytes_transferred", r->fetch.bytes_transferred},
                        {"bytes_resumed", r->fetch.bytes_resumed},
                        {"interrupted_transfers", r->fetch.interrupted_transfers}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  if (!r->changed) {
    fmt::print("{} is up to date\n", r->to_version);
  } else {
    std::string how = r->plan.empty() ? "" : r->plan[0].kind;
    if (how == "delta" && r->plan.size() > 1) how = fmt::format("{} deltas", r->plan.size());
    fmt::print("updated {} -> {} ({}; downloaded {} of a {} full file)\n",
               r->from_version.empty() ? "(none)" : r->from_version, r->to_version, how,
               update::human_bytes(r->download_bytes), update::human_bytes(r->full_bytes));
  }
  return 0;
}

int run_rollback(const std::string& models) {
  auto r = update::rollback_model(models);
  if (!r.ok()) return report_error(r.status());
  fmt::print("rolled back: {} is current\n", *r);
  return 0;
}

int run_models(const std::string& models, bool json, bool verify, bool current_path) {
  if (current_path) {
    auto p = update::current_model_path(models);
    if (!p.ok()) return report_error(p.status());
    fmt::print("{}\n", *p);
    return 0;
  }
  auto st = update::load_models_state(models);
  if (!st.ok()) return report_error(st.status());
  auto list = update::list_installed(models, verify);
  if (!list.ok()) return report_error(list.status());
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& l : *list) {
      arr.push_back({{"version", l.info.version},
                     {"path", l.path},
                     {"size", l.info.size},
                     {"sha256", l.info.sha256},
                     {"current", l.current},
                     {"previous", l.previous},
                     {"verified", l.verified},
                     {"installed_at", l.info.installed_at},
                     {"source", l.info.source}});
    }
    fmt::print("{}\n", nlohmann::json({{"model_id", st->model_id},
                                       {"current", st->current},
                                       {"previous", st->previous},
                                       {"installed", arr}})
                           .dump());
    return 0;
  }
  if (list->empty()) {
    fmt::print("no model installed in {}\n", models);
    return 0;
  }
  fmt::print("{} in {}\n", st->model_id, models);
  for (const auto& l : *list) {
    fmt::print("{} {:<12} {:>10}  sha256 {}  {}{}\n", l.current ? "*" : " ", l.info.version,
               update::human_bytes(l.info.size), l.info.sha256.substr(0, 16), l.verified,
               l.previous ? "  (previous)" : "");
  }
  return 0;
}

}  // namespace

void register_update(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "update", "Install the latest (or a given) model version from a signed release directory");
  auto o = std::make_shared<update::UpdateOptions>();
  auto json = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  sub->add_option("--from", o->from, "Release directory: http(s):// URL, file:// URL or folder")
      ->required();
  sub->add_option("--models", o->models_dir, "Models folder on this device")->required();
  sub->add_option("--pubkey", o->pubkey_path,
                  "Release public key (pinned in MODELS/trusted.pub on first use)");
  sub->add_option("--version", o->version, "Install this version instead of the latest");
  sub->add_flag("--allow-downgrade", o->allow_downgrade, "Allow installing an older version");
  sub->add_flag("--full", o->full, "Download the full file even when deltas exist");
  sub->add_option("--keep", o->keep, "Installed versions to keep (at least 2)")
      ->capture_default_str();
  sub->add_option("--retries", o->fetch.retries, "Resumed attempts after an interrupted transfer")
      ->capture_default_str();
  sub->add_option("--connect-timeout", o->fetch.connect_timeout_s, "Seconds")
      ->capture_default_str();
  sub->add_option("--stall-timeout", o->fetch.stall_timeout_s,
                  "Abort a transfer idle for this many seconds")
      ->capture_default_str();
  sub->add_flag("--json", *json, "Print the result as one JSON line");
  sub->add_flag("-q,--quiet", *quiet, "No progress output");
  sub->callback([=] { exit_with(run_update(*o, *json, *quiet)); });
}

void register_rollback(CLI::App& app) {
  auto* sub = app.add_subcommand("rollback", "Make the previous installed model version current");
  auto models = std::make_shared<std::string>();
  sub->add_option("--models", *models, "Models folder")->required();
  sub->callback([=] { exit_with(run_rollback(*models)); });
}

void register_models(CLI::App& app) {
  auto* sub = app.add_subcommand("models", "List the installed model versions");
  auto models = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto no_verify = std::make_shared<bool>(false);
  auto current_path = std::make_shared<bool>(false);
  sub->add_option("--models", *models, "Models folder")->required();
  sub->add_flag("--json", *json, "One JSON object");
  sub->add_flag("--no-verify", *no_verify, "Skip re-hashing the files");
  sub->add_flag("--current-path", *current_path,
                "Print only the absolute path of the current model file");
  sub->callback([=] { exit_with(run_models(*models, *json, !*no_verify, *current_path)); });
}

}  // namespace edgelm::cli
