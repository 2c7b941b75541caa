#!/usr/bin/env bash
# Mutation test of the passes' legality checks: applies, one at a time, a
# mutant of each check listed below (the condition dropped, weakened or
# inverted), rebuilds moe-opt and moe-run incrementally (ccache), runs the lit
# tests that exercise passes, and prints which mutants the tests killed and
# which survived. The source is restored after each mutant, and on Ctrl-C
# (or SIGTERM: a script started in the background ignores SIGINT).
# Exits non-zero if a mutant survived, did not build, or no longer applies.
# Not part of the README's test command: it rebuilds the tools ~100 times.
#
#   scripts/mutants.sh            every mutant
#   scripts/mutants.sh rms- tp-   only mutants whose name contains one of the words
#   scripts/mutants.sh --list     print the list and exit
#   scripts/mutants.sh --check    only check that every snippet applies (no build)
#
# Environment: BUILD_DIR (default build), LIT (lit.py), PYTHON (a python3 for
# lit and for applying the mutants), MUTANT_TESTS (lit directories under
# $BUILD_DIR/tests/lit, default "passes tools run smith").
#
# The list (MUTANTS below): one mutant a line, four fields separated by " @@ ":
#
#   name @@ file @@ snippet @@ replacement
#
# `snippet` must occur exactly once in `file` (else the mutant is reported
# STALE: update the snippet after the code changed); it is replaced by
# `replacement`. In both, `\n` stands for a newline (for a snippet that is
# only unique across two lines). Consecutive lines with the same name are
# one mutant, their edits applied together (two checks that each cover the
# other's case, dropped at once). Lines starting with `#` and blank lines are
# ignored. Every legality check of a pass (each `whyNot*` refusal, each
# matching condition whose loss would rewrite something it must not) has a
# mutant here and a lit case that kills it; a check that no input can reach
# is listed in docs/Passes.md ("Legality tests") instead, with why.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
LIT=${LIT:-/usr/lib/llvm-19/build/utils/lit/lit.py}
MUTANT_TESTS=${MUTANT_TESTS:-passes tools run smith}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$PWD")}

MUTANTS=$(cat <<'EOF'
# --- dyn-dims (passes/DynDims.cpp) ---
dyn-dims-partial-slice @@ passes/DynDims.cpp @@ if (op.getAttr("start")->getDim().isConstant(0) && op.getAttr("size")->getDim() == oldDim) { @@ if (true) {
dyn-dims-view-stride @@ passes/DynDims.cpp @@ if (match < 0)\n @@ if (false)\n
dyn-dims-view-sym-offset @@ passes/DynDims.cpp @@ if (!off)\n @@ if (false)\n
dyn-dims-reshape @@ passes/DynDims.cpp @@ if (P[i] % Q[j] == 0 && Q[j + 1] % P[i + 1] == 0) @@ if (true)
dyn-dims-ambiguous @@ passes/DynDims.cpp @@ if (best.size() > 1) { @@ if (false) {
dyn-dims-tied-sizes @@ passes/DynDims.cpp @@ b.captured && b.captured != *c) { @@ false) {
dyn-dims-bad-axis @@ passes/DynDims.cpp @@ if (!arg || !ax) { @@ if (!arg) {
dyn-dims-already-symbolic @@ passes/DynDims.cpp @@ if (!c) {\n @@ if (false) {\n
dyn-dims-symbol-taken @@ passes/DynDims.cpp @@ if (f.lookupSymbol(a.sym)) { @@ if (false) {
# --- view-reuse (passes/ViewReuse.cpp) ---
view-reuse-identity @@ passes/ViewReuse.cpp @@ if (in->getType() != op->getResult()->getType() || !isIdentity(*layoutOf(*op), in->getType())) @@ if (in->getType() != op->getResult()->getType())
view-reuse-slice-axis+type @@ passes/ViewReuse.cpp @@ normalizeAxis(inner->getAttr("axis")->getInt(), rank)) @@ normalizeAxis(op->getAttr("axis")->getInt(), rank))
view-reuse-slice-axis+type @@ passes/ViewReuse.cpp @@ if (*t != op->getResult()->getType()) @@ if (false)
view-reuse-readable-pair @@ passes/ViewReuse.cpp @@ if (k != OpKind::View && ik != OpKind::View) @@ if (false)
view-reuse-full-reshape @@ passes/ViewReuse.cpp @@ if (isFullReshape(*l, x->getType())) { @@ if (true) {
view-reuse-view-to-reshape @@ passes/ViewReuse.cpp @@ if (op->is(OpKind::View) && isFullReshape(l, in->getType())) { @@ if (op->is(OpKind::View)) {
view-reuse-share-key @@ passes/ViewReuse.cpp @@ auto [it, inserted] = reps.try_emplace({in, layoutKey(l)}, op); @@ auto [it, inserted] = reps.try_emplace({in, l.shape.empty() ? "" : l.shape[0].str()}, op);
# --- rms-fusion (passes/RmsFusion.cpp, passes/RmsMatch.cpp) ---
rms-fusion-axis @@ passes/RmsFusion.cpp @@ if (!axis || *axis != rank - 1) @@ if (!axis)
rms-fusion-f32 @@ passes/RmsFusion.cpp @@ if (m.x->getType().elem != ElemType::F32) @@ if (false)
rms-fusion-square-same @@ passes/RmsFusion.cpp @@ if (!sameValue(m.squaredA, m.squaredB)) @@ if (false)
rms-fusion-square-is-x @@ passes/RmsFusion.cpp @@ if (!sameValue(m.squaredA, m.x)) @@ if (false)
rms-fusion-mean-factor @@ passes/RmsFusion.cpp @@ if (!near(m.a, 1.0)) @@ if (false)
rms-fusion-sum-undivided @@ passes/RmsFusion.cpp @@ if (near(d, 1.0) && !n.isConstant(1)) @@ if (false)
rms-fusion-sum-divisor @@ passes/RmsFusion.cpp @@ if (!divisor || DimExpr(*divisor) != n) @@ if (!divisor)
rms-fusion-eps-constant @@ passes/RmsFusion.cpp @@ if (m.nonConstEps) @@ if (false)
rms-fusion-factor-broadcast @@ passes/RmsFusion.cpp @@ if (got != want) @@ if (false)
rms-fusion-other-users @@ passes/RmsFusion.cpp @@ if (m.sharedValue) @@ if (false)
rms-fusion-target @@ passes/RmsFusion.cpp @@ if (auto why = target.whyInvalid("rms_norm", m->x->getType(), f.symbolRanges())) { @@ if (auto why = target.whyInvalid("rms_norm", m->x->getType(), f.symbolRanges()); false) {
rms-match-reciprocal @@ passes/RmsMatch.cpp @@ if (!c || *c == 0 || (u->is(OpKind::Div) && u->getOperand(1) != other)) @@ if (!c || *c == 0)
rms-match-root-div @@ passes/RmsMatch.cpp @@ if (!u->is(OpKind::Div) || u->getOperand(1) != cur || other == cur) @@ if (!u->is(OpKind::Div) || other == cur)
rms-match-w-param @@ passes/RmsMatch.cpp @@ if (w == cur || !(w->isParam() || constant) || wd.empty() || wd.size() > xd.size() || @@ if (w == cur || wd.empty() || wd.size() > xd.size() ||
# --- merge-up-gate (passes/MergeUpGate.cpp, passes/ExpertMatch.cpp) ---
merge-up-gate-same-projection @@ passes/MergeUpGate.cpp @@ if (g.matmul == u.matmul) @@ if (false)
merge-up-gate-inputs @@ passes/MergeUpGate.cpp @@ if (g.x != u.x) @@ if (false)
merge-up-gate-ids @@ passes/MergeUpGate.cpp @@ if (g.ids != u.ids) @@ if (false)
merge-up-gate-weight-types @@ passes/MergeUpGate.cpp @@ if (g.weight->getType() != u.weight->getType()) @@ if (false)
merge-up-gate-derived @@ passes/MergeUpGate.cpp @@ if ((derived && !halvesOf(g.weight, u.weight)) || @@ if (false ||
merge-up-gate-gate-sharded @@ passes/MergeUpGate.cpp @@ || g.weight->argAttrs().has("shard_axis") || @@ || false ||
merge-up-gate-up-sharded @@ passes/MergeUpGate.cpp @@ u.weight->argAttrs().has("shard_axis")) @@ false)
merge-up-gate-act @@ passes/MergeUpGate.cpp @@ if (act(g) != act(u)) @@ if (false)
merge-up-gate-one-bias @@ passes/MergeUpGate.cpp @@ if (!g.bias != !u.bias) @@ if (false)
merge-up-gate-bias-types @@ passes/MergeUpGate.cpp @@ if (g.bias && g.biasParam->getType() != u.biasParam->getType()) @@ if (false)
merge-up-gate-halves-same-source @@ passes/MergeUpGate.cpp @@ a.from != b.from || a.axis != 1 @@ a.axis != 1
merge-up-gate-halves-gate-first @@ passes/MergeUpGate.cpp @@ a.start != 0 || b.start != a.size || @@ b.start != a.size ||
merge-up-gate-halves-adjacent @@ passes/MergeUpGate.cpp @@ a.start != 0 || b.start != a.size || @@ a.start != 0 ||
merge-up-gate-halves-whole @@ passes/MergeUpGate.cpp @@ if (src && src->getType().dims[1] == gate->getType().dims[1] + up->getType().dims[1]) @@ if (src)
expert-match-weight-param @@ passes/ExpertMatch.cpp @@ if (!p.weight->isParam() || (p.bias && !p.biasParam->isParam())) @@ if (p.bias && !p.biasParam->isParam())
expert-match-bias-param @@ passes/ExpertMatch.cpp @@ if (!p.weight->isParam() || (p.bias && !p.biasParam->isParam())) @@ if (!p.weight->isParam())
expert-match-bias-ids @@ passes/ExpertMatch.cpp @@ if (p.bias && p.bias->getOperand(2) != p.ids) @@ if (false)
expert-match-biased-one-use @@ passes/ExpertMatch.cpp @@ if (p.bias && !p.matmul->getResult()->hasOneUse())\n    return std::nullopt;\n  return p; @@ if (false)\n    return std::nullopt;\n  return p;
# --- split-gate-up (passes/SplitGateUp.cpp) ---
split-gate-up-derived @@ passes/SplitGateUp.cpp @@ if (p.weight->argAttrs().has("derive") || @@ if (false ||
split-gate-up-sharded @@ passes/SplitGateUp.cpp @@ || p.weight->argAttrs().has("shard_axis")) @@ || false)
split-gate-up-even @@ passes/SplitGateUp.cpp @@ if (!n2 || *n2 % 2) @@ if (!n2)
split-gate-up-lower-size @@ passes/SplitGateUp.cpp @@ if (start == 0 && size == n) @@ if (start == 0)
split-gate-up-upper-size @@ passes/SplitGateUp.cpp @@ else if (start == n && size == n) @@ else if (start == n)
split-gate-up-both-halves @@ passes/SplitGateUp.cpp @@ if (lower.empty() || upper.empty()) @@ if (false)
split-gate-up-axis @@ passes/SplitGateUp.cpp @@ normalizeAxis(u->getAttr("axis")->getInt(), 3) == int64_t(2); @@ true;
# --- tp-split (passes/TPSplit.cpp, passes/ExpertMatch.cpp) ---
tp-split-already-split @@ passes/TPSplit.cpp @@ if (f.attrs().has("ranks")) { @@ if (false) {
tp-split-up-dynamic @@ passes/TPSplit.cpp @@ if (!n)\n        return std::string("the up weight's n_ff is dynamic"); @@ if (false)\n        return std::string("the up weight's n_ff is dynamic");
tp-split-up-escapes @@ passes/TPSplit.cpp @@ if (!onlyUsedBy(u.result(), {&glu})) @@ if (false)
tp-split-up-params-private @@ passes/TPSplit.cpp @@ if (!paramsPrivate(u, u)) @@ if (false)
tp-split-merged-halves-size @@ passes/TPSplit.cpp @@ *n2 != 2 * *n || @@ false ||
tp-split-merged-gate-start @@ passes/TPSplit.cpp @@ !sg->getAttr("start")->getDim().isConstant(0) || @@ false ||
tp-split-merged-up-start @@ passes/TPSplit.cpp @@ !su->getAttr("start")->getDim().isConstant(*n)) @@ false)
tp-split-merged-escapes @@ passes/TPSplit.cpp @@ if (!onlyUsedBy(p.result(), {sg, su}) || @@ if (false ||
tp-split-merged-gate-slice-escapes @@ passes/TPSplit.cpp @@ !onlyUsedBy(sg->getResult(), {&glu}) || @@ false ||
tp-split-merged-up-slice-escapes @@ passes/TPSplit.cpp @@ !onlyUsedBy(su->getResult(), {&glu})) @@ false)
tp-split-merged-params-private @@ passes/TPSplit.cpp @@ if (!paramsPrivate(p, p)) @@ if (false)
tp-split-merged-one-projection @@ passes/TPSplit.cpp @@ sg->getOperand(0) != su->getOperand(0) || @@ false ||
tp-split-gated-dynamic @@ passes/TPSplit.cpp @@ if (!n)\n      return std::string("the gate or up weight's n_ff is dynamic"); @@ if (false)\n      return std::string("the gate or up weight's n_ff is dynamic");
tp-split-gate-escapes @@ passes/TPSplit.cpp @@ if (!onlyUsedBy(g.result(), {&glu}) || @@ if (false ||
tp-split-up-escapes-gated @@ passes/TPSplit.cpp @@ || !onlyUsedBy(u.result(), {&glu})) @@ || false)
tp-split-params-private @@ passes/TPSplit.cpp @@ if (!paramsPrivate(g, u)) @@ if (false)
tp-split-weight-private @@ passes/TPSplit.cpp @@ if (!onlyUsedBy(p->weight, {g.matmul, u.matmul}) || @@ if (false ||
tp-split-bias-private @@ passes/TPSplit.cpp @@ (p->biasParam && !onlyUsedBy(p->biasParam, {g.bias, u.bias}))) @@ false)
tp-split-act-one-use @@ passes/TPSplit.cpp @@ if (!act->hasOneUse()) @@ if (false)
tp-split-down-kind @@ passes/TPSplit.cpp @@ !(down->is(OpKind::MatmulId) || down->is(OpKind::Matmul)) || @@ false ||
tp-split-down-param @@ passes/TPSplit.cpp @@ !down->getOperand(1)->isParam()) @@ false)
tp-split-down-private @@ passes/TPSplit.cpp @@ if (!onlyUsedBy(down->getOperand(1), {down})) @@ if (false)
tp-split-granularity @@ passes/TPSplit.cpp @@ if (m.n % granularity) @@ if (false)
tp-split-block-granularity @@ passes/TPSplit.cpp @@ if (isQuantized(e) && granularity % blockElems(e)) @@ if (false)
expert-match-scale-per-row @@ passes/ExpertMatch.cpp @@ (ft.rank() && !ft.dims.back().isConstant(1)) || @@ false ||
expert-match-scale-one-use @@ passes/ExpertMatch.cpp @@ !a->hasOneUse())\n      continue; @@ false)\n      continue;
expert-match-dense-bias-one-use @@ passes/ExpertMatch.cpp @@ if (p.bias && !d->getResult()->hasOneUse()) @@ if (false)
# --- delay-allreduce (passes/DelayAllReduce.cpp; ir/OpInfo.cpp's linearity) ---
delay-allreduce-linear-exact-act @@ ir/OpInfo.cpp @@ return !act || act->kind() != Attribute::Kind::Ident || act->getIdent() == "f32"; @@ return true;
delay-allreduce-rank-local @@ passes/DelayAllReduce.cpp @@ } else if (downstream.count(v) || local.count(v)) { @@ } else if (downstream.count(v)) {
# (No mutant for the `downstream.count(v)` test next to it: a region op that
# reads a non-linear descendant of the region makes some region value have a
# user outside the region, which whyNotSink refuses for every sub-region
# containing that op; dropping the test changes nothing.)
delay-allreduce-linear-position @@ passes/DelayAllReduce.cpp @@ if (!linearPosition(op, i)) @@ if (false)
delay-allreduce-other-reduction @@ passes/DelayAllReduce.cpp @@ } else if (op.hasTrait(Trait::Additive) && otherReduced.count(v)) { @@ } else if (false) {
delay-allreduce-concat @@ passes/DelayAllReduce.cpp @@ return inRegion == op.getNumOperands(); @@ return true;
delay-allreduce-product @@ passes/DelayAllReduce.cpp @@ return inRegion == 1 || (inRegion == 2 && op.hasTrait(Trait::Additive)); @@ return inRegion >= 1;
delay-allreduce-ends-on-bias @@ passes/DelayAllReduce.cpp @@ if (isBiasOp(**it, inR))\n @@ if (false)\n
delay-allreduce-reduced-escapes @@ passes/DelayAllReduce.cpp @@ return std::string("the all_reduce has users outside the region"); @@ ;
delay-allreduce-value-escapes @@ passes/DelayAllReduce.cpp @@ return "%" + op->getResult()->getName() + " has users outside the region"; @@ ;
delay-allreduce-negate-sub @@ passes/DelayAllReduce.cpp @@ if (!inR.count(op->getOperand(0)) && op->is(OpKind::Sub)) { @@ if (false) {
delay-allreduce-bias-term @@ passes/DelayAllReduce.cpp @@ hasBias |= isBiasOp(*op, inR); @@ (void)op;
delay-allreduce-merge-one-use @@ passes/DelayAllReduce.cpp @@ !a->getResult()->hasOneUse() || !c->getResult()->hasOneUse()) @@ false)
delay-allreduce-cost @@ passes/DelayAllReduce.cpp @@ if (*there > *here) @@ if (false)
delay-allreduce-cheapest @@ passes/DelayAllReduce.cpp @@ if (!best || *bytes < *best) { @@ if (true) {
# --- allreduce-precision (passes/AllReducePrecision.cpp) ---
allreduce-precision-below @@ passes/AllReducePrecision.cpp @@ if (hi < minTokens) { @@ if (false) {
allreduce-precision-in-place @@ passes/AllReducePrecision.cpp @@ if (lo >= minTokens) @@ if (true)
allreduce-precision-token-dim @@ passes/AllReducePrecision.cpp @@ if (mine != tokens) @@ if (false)
allreduce-precision-rank-dependent @@ passes/AllReducePrecision.cpp @@ if (!tokens.isConstant() && f.attrs().has(tokens.str())) @@ if (false)
# --- quantize-activations (passes/QuantizeActivations.cpp) ---
quantize-activations-keeps-act @@ passes/QuantizeActivations.cpp @@ || op.attrs().has("act")) @@ )
quantize-activations-f32 @@ passes/QuantizeActivations.cpp @@ if (act == ElemType::F32) @@ if (false)
quantize-activations-bound @@ passes/QuantizeActivations.cpp @@ tolerance = std::max(tolerance, act == ElemType::Q8_0 ? 8 * 0x1p-8 : 2 * 0x1p-8); @@ tolerance = 1;
# --- canonicalize (passes/Canonicalize.cpp) ---
canonicalize-same-type @@ passes/Canonicalize.cpp @@ auto same = [&](Value *v) { return v->getType() == rt ? v : nullptr; }; @@ auto same = [&](Value *v) { return v; };
canonicalize-mul-one @@ passes/Canonicalize.cpp @@ case OpKind::Mul:\n      if (isSplat(b, 1)) @@ case OpKind::Mul:\n      if (f32Splat(b))
canonicalize-add-zero @@ passes/Canonicalize.cpp @@ case OpKind::Add:\n      if (isSplat(b, 0)) @@ case OpKind::Add:\n      if (f32Splat(b))
canonicalize-sub-order @@ passes/Canonicalize.cpp @@ return isSplat(b, 0) ? same(a) : nullptr; @@ return isSplat(b, 0) || isSplat(a, 0) ? same(isSplat(a, 0) ? b : a) : nullptr;
canonicalize-div-order @@ passes/Canonicalize.cpp @@ return isSplat(b, 1) ? same(a) : nullptr; @@ return isSplat(b, 1) || isSplat(a, 1) ? same(isSplat(a, 1) ? b : a) : nullptr;
canonicalize-scale-bias @@ passes/Canonicalize.cpp @@ return p.factor == 1 && p.bias == 0 ? same(a) : nullptr; @@ return p.factor == 1 ? same(a) : nullptr;
canonicalize-pow-one @@ passes/Canonicalize.cpp @@ .exponent == 1 ? same(a) : nullptr; @@ .exponent != 0 ? same(a) : nullptr;
canonicalize-neg-neg @@ passes/Canonicalize.cpp @@ return d && d->is(OpKind::Neg) ? same(d->getOperand(0)) : nullptr; @@ return d ? same(d->getOperand(0)) : nullptr;
canonicalize-permute @@ passes/Canonicalize.cpp @@ if ((*perm)[i] != (int64_t)i) @@ if (false)
canonicalize-reshape-chain @@ passes/Canonicalize.cpp @@ if (!inner || !inner->is(OpKind::Reshape)) @@ if (!inner || !inner->hasTrait(Trait::ViewLike))
canonicalize-fold-splat @@ passes/Canonicalize.cpp @@ auto s = f32Splat(v);\n      if (!s)\n        return nullptr; @@ auto s = f32Splat(v);\n      if (!s)\n        s = 0.0f;
# --- cse (passes/CSE.cpp) ---
cse-kind @@ passes/CSE.cpp @@ Key key{op.getKind(), @@ Key key{OpKind::Add,
cse-attrs @@ passes/CSE.cpp @@ op.attrs().str(), op.getResult()->getType().str()}; @@ std::string(), op.getResult()->getType().str()};
cse-type @@ passes/CSE.cpp @@ op.attrs().str(), op.getResult()->getType().str()}; @@ op.attrs().str(), std::string()};
cse-commutative @@ passes/CSE.cpp @@ if (op.hasTrait(Trait::Commutative) && operands.size() == 2 @@ if (operands.size() == 2
# --- dce (passes/DCE.cpp) ---
dce-operands-live @@ passes/DCE.cpp @@ work.push_back(d); @@ (void)d;
dce-dead-only @@ passes/DCE.cpp @@ if (!live.count(&op)) @@ if (!live.count(&op) || op.is(OpKind::Constant))
EOF
)

# name, file, snippet, replacement of each mutant, one field a line.
fields() {
  grep -v '^[[:space:]]*#' <<<"$MUTANTS" | grep -v '^[[:space:]]*$' |
    "$PYTHON" -c '
import sys
for line in sys.stdin:
    parts = [p.strip() for p in line.rstrip("\n").split(" @@ ")]
    if len(parts) != 4:
        sys.exit("mutants.sh: malformed line (want 4 fields): " + line)
    print("\x1f".join(parts))'
}

if [[ ${1:-} == --list ]]; then
  fields | while IFS=$'\x1f' read -r name file from to; do
    printf '%-40s %s\n    - %s\n    + %s\n' "$name" "$file" "$from" "$to"
  done
  exit 0
fi
if [[ ${1:-} == --check ]]; then
  bad=0
  while IFS=$'\x1f' read -r name file from to; do
    n=$("$PYTHON" -c 'import sys; print(open(sys.argv[1]).read().count(sys.argv[2].replace("\\n", "\n")))' "$file" "$from" 2>/dev/null || echo 0)
    [[ $n == 1 ]] || { echo "STALE     $name: snippet occurs $n times in $file"; bad=1; }
  done < <(fields)
  ((bad == 0)) && echo "every snippet applies"
  exit $bad
fi
filters=("$@")

tmp=$(mktemp -d)
current=""   # the file a mutant is applied to, restored on exit
# Puts the original text back with a new mtime (not `cp -p`): the build must
# see the file change again, or the mutant's object would stay in the tools.
restore() {
  local f
  for f in $current; do cp "$tmp/orig/$f" "$f"; done
  current=""
}
trap 'restore; rm -rf "$tmp"' EXIT
trap 'echo; echo "mutants.sh: interrupted, source restored"; exit 130' INT TERM

build() { cmake --build "$BUILD_DIR" -j2 --target moe-opt moe-run >"$tmp/build.log" 2>&1; }
runtests() {
  local dirs=()
  for d in $MUTANT_TESTS; do dirs+=("$BUILD_DIR/tests/lit/$d"); done
  timeout 600 "$PYTHON" "$LIT" -q -j2 "${dirs[@]}" >"$tmp/lit.log" 2>&1
}

echo "== baseline: build and run ($MUTANT_TESTS) unmutated"
if ! build; then cat "$tmp/build.log"; echo "mutants.sh: the unmutated source does not build"; exit 2; fi
if ! runtests; then cat "$tmp/lit.log"; echo "mutants.sh: the tests fail without a mutant"; exit 2; fi

# Applies the edits of one mutant (records "file\x1fsnippet\x1freplacement"
# on stdin); fails, changing nothing, if a snippet does not occur exactly once.
apply() {
  "$PYTHON" -c '
import sys
edits = [l.rstrip("\n").split("\x1f") for l in sys.stdin if l.strip()]
texts = {}
for path, frm, to in edits:
    frm, to = frm.replace("\\n", "\n"), to.replace("\\n", "\n")
    text = texts.get(path) or open(path).read()
    if text.count(frm) != 1:
        sys.exit(f"snippet occurs {text.count(frm)} times in {path}")
    texts[path] = text.replace(frm, to)
for path, text in texts.items():
    open(path, "w").write(text)'
}

# One line per mutant: name, then its edits (file, snippet, replacement).
grouped() {
  fields | "$PYTHON" -c '
import sys
last, out = None, []
for line in sys.stdin:
    name, rest = line.rstrip("\n").split("\x1f", 1)
    if name != last:
        out.append([name])
        last = name
    out[-1].append(rest)
for g in out:
    print("\x1e".join(g))'
}

killed=() survived=() broken=()
while IFS= read -r group; do
  name=${group%%$'\x1e'*}
  edits=${group#*$'\x1e'}
  if ((${#filters[@]})); then
    match=0
    for w in "${filters[@]}"; do [[ $name == *"$w"* ]] && match=1; done
    ((match)) || continue
  fi
  files=$(tr $'\x1e' '\n' <<<"$edits" | cut -d$'\x1f' -f1 | sort -u)
  missing=""
  for f in $files; do [[ -f $f ]] || missing+=" $f"; done
  if [[ -n $missing ]]; then
    broken+=("$name (STALE: no file$missing)"); echo "STALE     $name: no file$missing"; continue
  fi
  mkdir -p "$tmp/orig"
  current=$files
  for f in $files; do mkdir -p "$tmp/orig/$(dirname "$f")"; cp -p "$f" "$tmp/orig/$f"; done
  if ! tr $'\x1e' '\n' <<<"$edits" | apply; then
    restore
    broken+=("$name (STALE: a snippet is not unique)"); echo "STALE     $name"; continue
  fi
  start=$SECONDS
  if ! build; then
    restore
    broken+=("$name (does not build)"); echo "NOBUILD   $name"; sed -n '1,20p' "$tmp/build.log"; continue
  fi
  if runtests; then
    survived+=("$name"); echo "SURVIVED  $name ($((SECONDS - start)) s)"
  else
    by=$(grep -oE '^  moe :: [^ ]+' "$tmp/lit.log" | sed 's/^  moe :: //' | sort -u | tr '\n' ' ')
    [[ -z $by ]] && by="(lit: $(tail -1 "$tmp/lit.log"))"
    killed+=("$name"); echo "KILLED    $name ($((SECONDS - start)) s) by: $by"
  fi
  restore
done < <(grouped)

echo "== rebuild unmutated"
build || { cat "$tmp/build.log"; exit 2; }
echo
echo "killed: ${#killed[@]}  survived: ${#survived[@]}  broken: ${#broken[@]}"
for s in "${survived[@]}"; do echo "  survived: $s"; done
for s in "${broken[@]}"; do echo "  broken:   $s"; done
((${#survived[@]} == 0 && ${#broken[@]} == 0))
