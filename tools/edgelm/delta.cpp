// `edgelm delta make OLD NEW -o PATCH`, `edgelm delta apply OLD PATCH -o OUT`,
// `edgelm delta info PATCH`: tensor-aware model patches (docs/formats/delta.md).
//
//   make   writes PATCH such that applying it to OLD gives a file byte-identical to NEW.
//          Prints what changed (tensors same/changed/added/removed, chunk encodings) and the
//          patch size as a share of NEW. Options: -l/--level (zstd 1..22, default 19),
//          -t/--threads, --chunk-mib.
//   apply  checks the patch (header and body SHA-256) and OLD (size and SHA-256) before
//          writing anything, rebuilds OUT through "OUT.elmd-partial" verifying every
//          tensor's SHA-256 and the file's, fsyncs and renames. OUT may be OLD itself
//          (in-place update). If OUT already holds the target it does nothing.
//   info   prints the patch header (source/target sizes and SHA-256, buffers apply needs).
// Progress goes to stderr (-q silences it). Exit status: 0 ok, 1 error, 2 usage error.
#include "runtime/update/delta.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct DeltaCliOptions {
  std::string old_path, new_path, patch_path, out_path;
  int level = 19;
  int threads = 0;
  double chunk_mib = 4;
  bool quiet = false;
  bool json = false;
};

std::string mib(uint64_t b) {
  return fmt::format("{:.1f} MiB", static_cast<double>(b) / 1048576.0);
}

// Progress on stderr: an updating line on a terminal, a line per 10% otherwise.
update::ProgressFn make_progress(const char* verb, bool quiet) {
  if (quiet) return {};
  const bool tty = ::isatty(2) != 0;
  auto last = std::make_shared<int>(-1);
  return [verb, tty, last](uint64_t done, uint64_t total) {
    const int pct =
        total ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total))
              : 0;
    if (tty) {
      if (pct == *last && done != total) return;
      *last = pct;
      fmt::print(stderr, "\r{} {:3d}% ({} / {})", verb, pct, mib(done), mib(total));
      if (done == total) fmt::print(stderr, "\n");
    } else {
      const int step = pct / 10;
      if (step == *last) return;
      *last = step;
      fmt::print(stderr, "{} {:3d}% ({} / {})\n", verb, pct, mib(done), mib(total));
    }
  };
}

update::PhaseFn make_phase(bool quiet) {
  if (quiet) return {};
  return [](const std::string& p) { fmt::print(stderr, "delta: {}\n", p); };
}

int run_make(const DeltaCliOptions& o) {
  update::DeltaOptions opts;
  opts.zstd_level = o.level;
  opts.threads = o.threads;
  if (o.chunk_mib <= 0 || o.chunk_mib > 64) {
    return report_error(fmt::format("--chunk-mib {} out of range (0, 64]", o.chunk_mib));
  }
  opts.chunk_bytes = static_cast<uint64_t>(o.chunk_mib * 1048576.0);
  opts.progress = make_progress("compressing", o.quiet);
  opts.phase = make_phase(o.quiet);
  update::DeltaStats st;
  const auto t0 = std::chrono::steady_clock::now();
  if (Status s = update::make_delta(o.old_path, o.new_path, o.patch_path, opts, &st); !s.ok()) {
    return report_error(s);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double share = st.target_bytes ? 100.0 * static_cast<double>(st.patch_bytes) /
                                             static_cast<double>(st.target_bytes)
                                       : 0.0;
  if (o.json) {
    nlohmann::ordered_json j = {{"patch", o.patch_path},
                                {"patch_bytes", st.patch_bytes},
                                {"target_bytes", st.target_bytes},
                                {"share", share / 100.0},
                                {"seconds", secs},
                                {"metadata_changed", st.metadata_changed},
                                {"tensors",
                                 {{"same", st.tensors_same},
                                  {"changed", st.tensors_changed},
                                  {"added", st.tensors_added},
                                  {"removed", st.tensors_removed}}},
                                {"chunks",
                                 {{"copy", st.chunks_copy},
                                  {"zero", st.chunks_zero},
                                  {"prefix", st.chunks_prefix},
                                  {"sub", st.chunks_sub}}}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("patch:     {} ({} bytes, {:.2f}% of the new file's {} bytes)\n", o.patch_path,
             st.patch_bytes, share, st.target_bytes);
  fmt::print("metadata:  {}\n", st.metadata_changed ? "changed" : "unchanged");
  fmt::print("tensors:   {} unchanged, {} changed, {} added, {} removed\n", st.tensors_same,
             st.tensors_changed, st.tensors_added, st.tensors_removed);
  fmt::print("chunks:    {} copied, {} zero, {} zstd with old prefix, {} zstd of difference\n",
             st.chunks_copy, st.chunks_zero, st.chunks_prefix, st.chunks_sub);
  fmt::print("time:      {:.1f} s\n", secs);
  return 0;
}

int run_apply(const DeltaCliOptions& o) {
  update::DeltaOptions opts;
  opts.progress = make_progress("applying", o.quiet);
  opts.phase = make_phase(o.quiet);
  const auto t0 = std::chrono::steady_clock::now();
  if (Status s = update::apply_delta(o.old_path, o.patch_path, o.out_path, opts); !s.ok()) {
    return report_error(s);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto info = update::read_delta_info(o.patch_path);
  if (!o.quiet) {
    fmt::print(stderr, "delta: wrote '{}' ({:.1f} s){}\n", o.out_path, secs,
               info.ok() ? fmt::format(", sha256 {}", update::to_hex(info->target_sha256)) : "");
  }
  return 0;
}

int run_info(const DeltaCliOptions& o) {
  auto info = update::read_delta_info(o.patch_path);
  if (!info.ok()) return report_error(info.status());
  const auto& i = *info;
  if (o.json) {
    nlohmann::ordered_json j = {{"patch", o.patch_path},
                                {"version", i.version},
                                {"patch_size", i.patch_size},
                                {"source_size", i.source_size},
                                {"source_sha256", update::to_hex(i.source_sha256)},
                                {"target_size", i.target_size},
                                {"target_sha256", update::to_hex(i.target_sha256)},
                                {"segments", i.segments},
                                {"max_chunk", i.max_chunk},
                                {"max_ref", i.max_ref},
                                {"max_frame", i.max_frame}};
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("patch:    {} (format version {}, {} bytes, {} segments)\n", o.patch_path, i.version,
             i.patch_size, i.segments);
  fmt::print("source:   {} bytes, sha256 {}\n", i.source_size, update::to_hex(i.source_sha256));
  fmt::print("target:   {} bytes, sha256 {}\n", i.target_size, update::to_hex(i.target_sha256));
  fmt::print("buffers:  chunk {} + reference {} + frame {} bytes\n", i.max_chunk, i.max_ref,
             i.max_frame);
  return 0;
}

}  // namespace

void register_delta(CLI::App& app) {
  auto o = std::make_shared<DeltaCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "delta", "Make, apply or inspect tensor-aware model patches (format: docs/formats/delta.md)");
  sub->require_subcommand(1);

  CLI::App* mk =
      sub->add_subcommand("make", "Write a patch that turns OLD into a file byte-identical to NEW");
  mk->add_option("old", o->old_path, "Model the patch starts from (GGUF)")
      ->required()
      ->check(CLI::ExistingFile);
  mk->add_option("new", o->new_path, "Model the patch produces (GGUF)")
      ->required()
      ->check(CLI::ExistingFile);
  mk->add_option("-o,--output", o->patch_path, "Patch file to write")->required();
  mk->add_option("-l,--level", o->level, "zstd level for changed tensors, 1..22")
      ->capture_default_str()
      ->check(CLI::Range(1, 22));
  mk->add_option("-t,--threads", o->threads, "Compression threads; 0 = all cores")
      ->capture_default_str();
  mk->add_option("--chunk-mib", o->chunk_mib,
                 "Changed tensors are compressed in chunks of this size (MiB); apply needs about "
                 "3 chunks + 2 MiB of memory")
      ->capture_default_str();
  mk->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  mk->add_flag("--json", o->json, "Print the summary as one JSON object");
  mk->callback([o] { exit_with(run_make(*o)); });

  CLI::App* ap = sub->add_subcommand(
      "apply",
      "Rebuild the new model from OLD and PATCH; verifies every hash, writes OUT atomically");
  ap->add_option("old", o->old_path, "Model the patch was made from (never modified)")
      ->required()
      ->check(CLI::ExistingFile);
  ap->add_option("patch", o->patch_path, "Patch from `edgelm delta make`")
      ->required()
      ->check(CLI::ExistingFile);
  ap->add_option("-o,--output", o->out_path,
                 "File to write (may be OLD itself); a killed run leaves OUT.elmd-partial, "
                 "which the next run reuses")
      ->required();
  ap->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  ap->callback([o] { exit_with(run_apply(*o)); });

  CLI::App* in = sub->add_subcommand("info", "Show a patch's header: source and target hashes");
  in->add_option("patch", o->patch_path, "Patch file")->required()->check(CLI::ExistingFile);
  in->add_flag("--json", o->json, "Print one JSON object");
  in->callback([o] { exit_with(run_info(*o)); });
}

}  // namespace edgelm::cli
