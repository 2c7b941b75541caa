//===- ToolCommon.cpp - Flags and hooks shared by the tools ---------------===//
#include "tools/lib/ToolCommon.h"
#include "tools/lib/VerifyNumerics.h"

using namespace moe;
namespace cl = llvm::cl;

NumericsFlags::NumericsFlags(cl::OptionCategory &cat)
    : verify("verify-numerics",
             cl::desc("Run the reference interpreter before and after every pass on random "
                      "inputs at several symbol values (1, 7, the range's ends); a function "
                      "dyn-dims re-symbolised also at T = 1, 5, 13 and above the capture "
                      "against the captured function run in chunks; fail when outputs "
                      "differ or ranks disagree"),
             cl::cat(cat)),
      seed("verify-numerics-seed", cl::desc("Seed of the random inputs (default 1)"),
           cl::init(1), cl::cat(cat)),
      rtol("verify-numerics-rtol",
           cl::desc("Tolerance of max|a-b| / max(max|b|, 1) for f32 outputs (f16 and "
                      "bf16: at least 2e-3 and 1.6e-2; i32 exact)"),
           cl::init(1e-4), cl::cat(cat)) {}

llvm::Error moe::addNumericsInstrumentation(PassManager &pm, const NumericsFlags &flags,
                                            const Module &m) {
  if (!flags.verify)
    return llvm::Error::success();
  pm.addInstrumentation(createVerifyNumerics({flags.seed, flags.rtol}));
  return llvm::Error::success();
}
