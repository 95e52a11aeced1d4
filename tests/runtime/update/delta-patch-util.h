// Patch-making helpers for the delta library's own tests (test_runtime_update links
// edgelm_runtime_update; delta-test-util.h stays free of it for the CLI tests).
//
//   DeltaFixture fx("tag");
//   ASSERT_TRUE(make_patch(fx, Variant::kVocab, small_chunks()).ok());
#pragma once

#include "delta-test-util.h"
#include "runtime/update/delta.h"

namespace edgelm::update::testing {

// Small chunks and a fast zstd level, so even the ~150 KB test model makes many records.
inline DeltaOptions small_chunks(int threads = 2) {
  DeltaOptions o;
  o.zstd_level = 3;
  o.threads = threads;
  o.chunk_bytes = 4096;
  o.ref_margin_bytes = 1024;
  return o;
}

// Writes the base model as fx.old_path, its variant `v` as fx.new_path and the patch between them.
inline Status make_patch(const DeltaFixture& fx, Variant v, const DeltaOptions& options) {
  RETURN_IF_ERROR(write_base(fx.old_path));
  RETURN_IF_ERROR(write_variant(v, fx.old_path, fx.new_path));
  return make_delta(fx.old_path, fx.new_path, fx.patch_path, options);
}

}  // namespace edgelm::update::testing
