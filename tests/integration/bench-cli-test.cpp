// `edgelm bench` and `edgelm-gen-model` end to end, with tiny counts: the JSON report parses
// and holds one result per (thread count, test) with positive finite rates; the markdown table
// and progress lines; usage errors; gen-model's tensor type mix (llama-quantize's choices),
// never-zero weights, determinism per seed, and that edgelm can benchmark what it writes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "cli-util.h"
#include "gguf/reader.h"
#include "test_util.h"

namespace edgelm {
namespace {

constexpr const char* kConfQ8 = "models/conf-llama-spm-q8_0.gguf";

using Proc = testing::CliRun;
using testing::slurp;

// Runs `exe args` (args already shell-safe) and captures stdout and stderr.
Proc run_exe(const std::string& exe, const std::string& args) {
  return testing::run_command(exe + " " + args);
}

Proc bench(const std::string& args) { return run_exe(EDGELM_CLI, "bench " + args); }

std::string gen_model_exe() {
  const std::string p = std::string(EDGELM_BINARY_DIR) + "/bench/edgelm-gen-model";
  return std::filesystem::exists(p) ? p : std::string();
}

#define REQUIRE_GEN_MODEL(var)             \
  const std::string var = gen_model_exe(); \
  if (var.empty())                         \
  GTEST_SKIP() << "SKIPPED: edgelm-gen-model is not built (target edgelm_gen_model)"

void expect_result_sane(const nlohmann::json& r, int reps) {
  SCOPED_TRACE(r.dump());
  ASSERT_TRUE(r["avg_ts"].is_number());
  const double ts = r["avg_ts"];
  EXPECT_TRUE(std::isfinite(ts));
  EXPECT_GT(ts, 0.0);
  EXPECT_GE(r["stddev_ts"].get<double>(), 0.0);
  ASSERT_EQ(r["samples_ns"].size(), static_cast<size_t>(reps));
  for (const auto& ns : r["samples_ns"]) EXPECT_GT(ns.get<double>(), 0.0);
  EXPECT_EQ(r["reps"].get<int>(), reps);
}

TEST(BenchCli, JsonReportHasEveryTestAndThreadCount) {
  EDGELM_REQUIRE_SHARED(model, kConfQ8);
  Proc p =
      bench("-m " + model + " -t 1,2 -p 16,8 -n 4 --pg 8,3 -r 2 --seed 7 --membw-mib 16 -o json");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(p.out)) << p.out;

  EXPECT_EQ(j["engine"], "edgelm");
  EXPECT_FALSE(j["build"]["commit"].get<std::string>().empty());
  EXPECT_FALSE(j["build"]["version"].get<std::string>().empty());
  EXPECT_FALSE(j["kernels"].get<std::string>().empty());
  EXPECT_TRUE(j["cpu"]["features"].is_string());
  EXPECT_EQ(j["model"]["arch"], "llama");
  EXPECT_EQ(j["model"]["n_vocab"].get<int64_t>(), 32000);
  EXPECT_GT(j["model"]["n_params"].get<int64_t>(), 1000000);
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 0.0);
  EXPECT_GE(j["peak_rss_bytes"].get<double>(), j["base_rss_bytes"].get<double>());
  EXPECT_EQ(j["params"]["seed"].get<int>(), 7);
  // Memory bandwidth: one positive figure per thread count, over at least 16 MiB.
  const double bytes_per_token = j["model"]["weight_bytes_per_token"].get<double>();
  EXPECT_GT(bytes_per_token, 1e6);
  EXPECT_LE(bytes_per_token, 1.05 * j["model"]["size_bytes"].get<double>());
  EXPECT_GE(j["mem_bw_buffer_bytes"].get<double>(), 16.0 * 1024 * 1024);
  ASSERT_EQ(j["mem_bw"].size(), 2u);
  std::map<int, double> bw;
  for (const auto& b : j["mem_bw"]) {
    EXPECT_GT(b["gbps"].get<double>(), 0.0);
    bw[b["n_threads"].get<int>()] = b["gbps"].get<double>();
  }
  EXPECT_EQ(bw.size(), 2u);

  const auto& results = j["results"];
  ASSERT_EQ(results.size(), 8u);  // 2 thread counts x (pp16, pp8, tg4, pp8+tg3)
  std::set<std::pair<std::string, int>> seen;
  for (const auto& r : results) {
    expect_result_sane(r, 2);
    seen.insert({r["test"].get<std::string>(), r["n_threads"].get<int>()});
    const std::string kind = r["kind"];
    // Each sample's rate is its tokens over its time: p for pp, n for tg, p + n for pg.
    const double tokens = r["n_prompt"].get<double>() + r["n_gen"].get<double>();
    for (size_t i = 0; i < r["samples_ns"].size(); ++i)
      EXPECT_NEAR(r["samples_ts"][i].get<double>() * r["samples_ns"][i].get<double>() / 1e9, tokens,
                  1e-6 * tokens);
    if (kind == "pp") {
      EXPECT_EQ(r["n_gen"].get<int>(), 0);
      EXPECT_GT(r["ttft_ms"].get<double>(), 0.0);
    } else if (kind == "tg") {
      EXPECT_EQ(r["n_prompt"].get<int>(), 0);
      EXPECT_EQ(r["n_gen"].get<int>(), 4);
      EXPECT_FALSE(r.contains("ttft_ms"));
      // Weight bytes per token, achieved GB/s = t/s x bytes/token, fraction of measured bw.
      EXPECT_EQ(r["bytes_per_token"].get<double>(), bytes_per_token);
      const double achieved = r["achieved_gbps"].get<double>();
      EXPECT_GT(achieved, 0.0);
      EXPECT_NEAR(achieved, r["avg_ts"].get<double>() * bytes_per_token / 1e9,
                  1e-9 * achieved + 1e-12);
      EXPECT_GT(r["bw_fraction"].get<double>(), 0.0);
      EXPECT_NEAR(r["bw_fraction"].get<double>(), achieved / bw[r["n_threads"].get<int>()], 1e-9);
    } else {
      EXPECT_EQ(kind, "pg");
      EXPECT_EQ(r["n_prompt"].get<int>(), 8);
      EXPECT_EQ(r["n_gen"].get<int>(), 3);
      // Total time covers the prefill.
      EXPECT_GT(r["avg_ns"].get<double>() / 1e6, r["ttft_ms"].get<double>() * 0.99);
    }
  }
  for (int t : {1, 2})
    for (const char* name : {"pp16", "pp8", "tg4", "pp8+tg3"})
      EXPECT_TRUE(seen.count({name, t})) << name << " t=" << t;

  // Progress on stderr, nothing but JSON on stdout.
  EXPECT_NE(p.err.find("pp16 t=2 rep 2/2"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("pp8+tg3 t=1 rep 1/2"), std::string::npos) << p.err;
}

TEST(BenchCli, MarkdownTable) {
  EDGELM_REQUIRE_SHARED(model, kConfQ8);
  Proc p = bench("-m " + model + " -t 1 -p 8 -n 2 -r 1 --no-warmup");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("| model | size | params | kernels | threads | test | t/s |"),
            std::string::npos)
      << p.out;
  EXPECT_NE(p.out.find("| pp8 |"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("| tg2 |"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("build: edgelm"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("kernels: "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("peak RSS: "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("| MiB/token | GB/s | of mem bw |"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("memory bandwidth (read-only stream over "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find(" GB/s"), std::string::npos) << p.out;
  EXPECT_EQ(p.err.find("warmup"), std::string::npos) << "--no-warmup still warmed up: " << p.err;
}

TEST(BenchCli, RefKernelsAreSelectable) {
  EDGELM_REQUIRE_SHARED(model, kConfQ8);
  Proc p = bench("-m " + model + " -t 1 -p 4 -n 0 -r 1 --kernels ref -o json");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto j = nlohmann::json::parse(p.out);
  EXPECT_EQ(j["kernels"], "ref");
  ASSERT_EQ(j["results"].size(), 1u);  // -n 0 disables tg
  EXPECT_EQ(j["results"][0]["test"], "pp4");
}

TEST(BenchCli, UsageErrors) {
  EDGELM_REQUIRE_SHARED(model, kConfQ8);
  Proc bad_fmt = bench("-m " + model + " -p 4 -n 1 -r 1 -o xml");
  EXPECT_EQ(bad_fmt.exit_code, 1);
  EXPECT_NE(bad_fmt.err.find("md or json"), std::string::npos) << bad_fmt.err;

  Proc bad_pg = bench("-m " + model + " -p 0 -n 0 --pg 5 -r 1");
  EXPECT_EQ(bad_pg.exit_code, 1);
  EXPECT_NE(bad_pg.err.find("--pg"), std::string::npos) << bad_pg.err;

  Proc nothing = bench("-m " + model + " -p 0 -n 0 -r 1");
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_NE(nothing.err.find("nothing to measure"), std::string::npos) << nothing.err;

  Proc bad_threads = bench("-m " + model + " -t 0 -p 4 -n 1 -r 1");
  EXPECT_EQ(bad_threads.exit_code, 1);

  Proc missing = bench("-m /nonexistent/model.gguf");
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

TEST(BenchCli, CorruptModelIsAnError) {
  const std::string path = testing::temp_path("bench-corrupt.gguf");
  {
    std::ofstream f(path, std::ios::binary);
    f << "GGUF this is not a model";
  }
  Proc p = bench("-m " + path + " -p 4 -n 1 -r 1");
  std::filesystem::remove(path);
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("edgelm: error:"), std::string::npos) << p.err;
}

// ---- edgelm-gen-model ----

TEST(GenModel, Q4KmMixFollowsLlamaQuantize) {
  REQUIRE_GEN_MODEL(gen);
  const std::string out = testing::temp_path("gen-q4km.gguf");
  Proc g = run_exe(
      gen,
      "--out " + out +
          " --type q4_k_m --dim 256 --layers 8 --heads 4 --kv-heads 2 --ff 256 --vocab 300 -t 2");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  auto file = GgufFile::open(out);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  const GgufFile& f = **file;
  EXPECT_EQ(f.get_string("general.architecture").value_or(""), "llama");
  EXPECT_EQ(f.get_uint("llama.block_count").value_or(0), 8u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count_kv").value_or(0), 2u);
  EXPECT_EQ(f.get_uint("general.file_type").value_or(0), 15u);
  ASSERT_NE(f.find("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->array_count, 300u);

  auto type_of = [&](const std::string& name) {
    const GgufTensorInfo* t = f.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    return t ? t->type : GgmlType::kF32;
  };
  EXPECT_EQ(type_of("output.weight"), GgmlType::kQ6_K);
  EXPECT_EQ(type_of("token_embd.weight"), GgmlType::kQ4_K);
  EXPECT_EQ(type_of("output_norm.weight"), GgmlType::kF32);
  // llama.cpp's use_more_bits(i, 8): layers 0, 3, 6, 7 get Q6_K attn_v and ffn_down.
  const std::set<int> more{0, 3, 6, 7};
  for (int l = 0; l < 8; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const GgmlType want = more.count(l) ? GgmlType::kQ6_K : GgmlType::kQ4_K;
    EXPECT_EQ(type_of(p + "attn_v.weight"), want) << l;
    EXPECT_EQ(type_of(p + "ffn_down.weight"), want) << l;
    EXPECT_EQ(type_of(p + "attn_q.weight"), GgmlType::kQ4_K) << l;
    EXPECT_EQ(type_of(p + "ffn_gate.weight"), GgmlType::kQ4_K) << l;
    EXPECT_EQ(type_of(p + "attn_norm.weight"), GgmlType::kF32) << l;
    const GgufTensorInfo* k = f.find_tensor(p + "attn_k.weight");
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->dims, (std::vector<int64_t>{256, 128}));  // kv_dim = 2 heads x 64
  }

  // edgelm benchmarks what gen-model writes.
  Proc b = bench("-m " + out + " -t 1 -p 8 -n 2 -r 1 -o json");
  std::filesystem::remove(out);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto j = nlohmann::json::parse(b.out);
  EXPECT_EQ(j["model"]["n_embd"].get<int64_t>(), 256);
  EXPECT_EQ(j["model"]["n_layer"].get<int64_t>(), 8);
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& r : j["results"]) expect_result_sane(r, 1);
}

TEST(GenModel, F16WeightsNeverZeroAndDeterministicPerSeed) {
  REQUIRE_GEN_MODEL(gen);
  const std::string a = testing::temp_path("gen-a.gguf"), b = testing::temp_path("gen-b.gguf"),
                    c = testing::temp_path("gen-c.gguf");
  const std::string shape =
      " --type f16 --dim 64 --layers 2 --heads 4 --kv-heads 4 --ff 128 --vocab 320";
  ASSERT_EQ(run_exe(gen, "--out " + a + shape + " --seed 5 -t 1").exit_code, 0);
  ASSERT_EQ(run_exe(gen, "--out " + b + shape + " --seed 5 -t 2").exit_code, 0);
  ASSERT_EQ(run_exe(gen, "--out " + c + shape + " --seed 6 -t 2").exit_code, 0);
  const std::string ba = slurp(a), bb = slurp(b), bc = slurp(c);
  EXPECT_EQ(ba, bb) << "same seed, different thread count: files differ";
  EXPECT_NE(ba, bc) << "different seeds gave identical files";

  auto file = GgufFile::open(a);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  size_t checked = 0;
  for (const auto& t : (*file)->tensors()) {
    if (t.type != GgmlType::kF16) continue;
    double sum2 = 0;
    for (int64_t i = 0; i < t.n_elements; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      ASSERT_NE(h & 0x7fff, 0) << t.name << " element " << i << " is zero";
      ++checked;
      // |x| from the f16 exponent/mantissa is enough for a rough scale check.
      const int e = (h >> 10) & 0x1f;
      const double m = 1.0 + (h & 0x3ff) / 1024.0;
      const double x =
          e == 0 ? (h & 0x3ff) / 1024.0 * std::ldexp(1.0, -14) : m * std::ldexp(1.0, e - 15);
      sum2 += x * x;
    }
    const double sd = std::sqrt(sum2 / static_cast<double>(t.n_elements));
    EXPECT_NEAR(sd, 0.02, 0.004) << t.name;  // default --std 0.02
  }
  EXPECT_GT(checked, 10000u);
  for (const auto& t : (*file)->tensors()) {
    if (t.type != GgmlType::kF32) continue;  // norms: 1 + N(0, 0.05)
    for (int64_t i = 0; i < t.n_elements; ++i) {
      float x;
      std::memcpy(&x, t.data + 4 * i, 4);
      EXPECT_GT(x, 0.6f) << t.name;
      EXPECT_LT(x, 1.4f) << t.name;
    }
  }
  std::filesystem::remove(a);
  std::filesystem::remove(b);
  std::filesystem::remove(c);
}

TEST(GenModel, RejectsBadShapes) {
  REQUIRE_GEN_MODEL(gen);
  const std::string out = testing::temp_path("gen-bad.gguf");
  Proc heads = run_exe(gen, "--out " + out + " --dim 100 --heads 3 --layers 1 --ff 64 --vocab 300");
  EXPECT_NE(heads.exit_code, 0);
  EXPECT_NE(heads.err.find("--heads"), std::string::npos) << heads.err;
  Proc type = run_exe(
      gen, "--out " + out + " --type q2_k --dim 64 --layers 1 --ff 64 --heads 4 --kv-heads 4");
  EXPECT_NE(type.exit_code, 0);
  EXPECT_NE(type.err.find("--type"), std::string::npos) << type.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace edgelm
