// `edgelm quantize` and `edgelm audit` end to end (built CLI in EDGELM_CLI): quantize a tiny F16
// model, audit it (JSON types per tensor), force a fallback with EDGELM_DISABLE_KERNEL and see
// the audit report it, --strict-quant refuse it (audit, run, serve), clear CLI errors that leave
// OUT untouched; and the C API's edgelm_model_params.strict_quant.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli-util.h"
#include "edgelm/edgelm.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

namespace fs = std::filesystem;

using Cmd = testing::CliRun;
using testing::slurp;

// Runs `ENV edgelm ARGS` (ARGS shell-safe: temp paths without quotes or spaces).
Cmd edgelm_cmd(const std::string& args, const std::string& env = "") {
  return testing::run_command(env + (env.empty() ? "" : " ") + EDGELM_CLI + " " + args);
}

class QuantizeAuditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TinyModelSpec spec;
    spec.matrix_type = GgmlType::kF16;
    src_ = testing::temp_path("qcli-src-f16.gguf");
    out_ = testing::temp_path("qcli-q4km.gguf");
    ASSERT_TRUE(testing::write_tiny_model(spec, src_).ok());
  }
  void TearDown() override {
    fs::remove(src_);
    fs::remove(out_);
  }
  std::string src_, out_;
};

TEST_F(QuantizeAuditCli, QuantizeAuditAndForcedFallback) {
  Cmd q = edgelm_cmd("quantize " + src_ + " " + out_ + " --type q4_k_m -t 2");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.err.find("[   1/"), std::string::npos) << q.err;  // progress lines
  EXPECT_NE(q.err.find("q4_k_m"), std::string::npos);

  Cmd a = edgelm_cmd("audit " + out_ + " --json");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto j = nlohmann::json::parse(a.out);
  EXPECT_EQ(j["summary"]["converted"].get<int>(), 0);
  EXPECT_NE(j["file_type"].get<std::string>().find("MOSTLY_Q4_K_M"), std::string::npos);
  bool saw_q6k = false;
  for (const auto& t : j["tensors"]) {
    EXPECT_EQ(t["stored_type"], t["exec_type"]) << t["name"];
    if (t["name"] == "output.weight") {
      EXPECT_EQ(t["stored_type"], "q6_K");
    }
    if (t["stored_type"] == "q6_K") saw_q6k = true;
  }
  EXPECT_TRUE(saw_q6k);

  // Forced fallback: the audit says so, in text and JSON.
  Cmd f = edgelm_cmd("audit " + out_, "EDGELM_DISABLE_KERNEL=q4_K");
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.out.find("CONVERTED AT LOAD"), std::string::npos) << f.out;
  Cmd fj = edgelm_cmd("audit " + out_ + " --json", "EDGELM_DISABLE_KERNEL=q4_K");
  ASSERT_EQ(fj.exit_code, 0) << fj.err;
  auto jf = nlohmann::json::parse(fj.out);
  EXPECT_GT(jf["summary"]["converted"].get<int>(), 0);
  EXPECT_GT(jf["summary"]["actual_bytes"].get<size_t>(),
            jf["summary"]["expected_bytes"].get<size_t>());

  // --strict-quant refuses the same load, in audit and in run.
  Cmd s = edgelm_cmd("audit " + out_ + " --strict-quant", "EDGELM_DISABLE_KERNEL=q4_K");
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_NE(s.err.find("strict"), std::string::npos) << s.err;
  Cmd r = edgelm_cmd("run -m " + out_ + " -p hi -n 1 --strict-quant", "EDGELM_DISABLE_KERNEL=q4_K");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("q4_K"), std::string::npos) << r.err;
  // serve refuses before it listens (port 0: any free port; the load fails first).
  Cmd sv =
      edgelm_cmd("serve -m " + out_ + " --port 0 --strict-quant", "EDGELM_DISABLE_KERNEL=q4_K");
  EXPECT_EQ(sv.exit_code, 1) << sv.err;
  EXPECT_NE(sv.err.find("q4_K"), std::string::npos) << sv.err;
  Cmd ok = edgelm_cmd("audit " + out_ + " --strict-quant");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(QuantizeAuditCli, BadInputLeavesOutUntouched) {
  { std::ofstream(out_) << "keep me"; }
  Cmd t = edgelm_cmd("quantize " + src_ + " " + out_ + " --type q3_k_s");
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(t.err.find("unknown --type"), std::string::npos) << t.err;
  const std::string q8 = testing::temp_path("qcli-q8.gguf");
  ASSERT_EQ(edgelm_cmd("quantize " + src_ + " " + q8 + " --type q8_0 -q").exit_code, 0);
  Cmd requant = edgelm_cmd("quantize " + q8 + " " + out_ + " --type q4_0");
  EXPECT_EQ(requant.exit_code, 1);
  EXPECT_NE(requant.err.find("already q8_0"), std::string::npos) << requant.err;
  Cmd missing = edgelm_cmd("quantize " + src_ + ".nope " + out_ + " --type q4_0");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find(".nope"), std::string::npos) << missing.err;
  EXPECT_EQ(slurp(out_), "keep me");
  fs::remove(q8);
}

TEST_F(QuantizeAuditCli, CApiStrictQuant) {
  Cmd q = edgelm_cmd("quantize " + src_ + " " + out_ + " --type q4_0 -q");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  ::setenv("EDGELM_DISABLE_KERNEL", "q4_0", 1);
  edgelm_model_params p = edgelm_model_default_params();
  EXPECT_FALSE(p.strict_quant);
  edgelm_model* m = nullptr;
  const int lenient = edgelm_model_load(out_.c_str(), &p, &m);
  edgelm_model_free(m);
  m = nullptr;
  p.strict_quant = true;
  const int strict = edgelm_model_load(out_.c_str(), &p, &m);
  const std::string msg = edgelm_last_error();
  ::unsetenv("EDGELM_DISABLE_KERNEL");
  EXPECT_EQ(lenient, EDGELM_OK);
  EXPECT_EQ(strict, EDGELM_ERR_FAILED_PRECONDITION);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(msg.find("q4_0"), std::string::npos) << msg;
}

}  // namespace
}  // namespace edgelm
