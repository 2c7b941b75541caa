// ik_moebench.cpp -- side-by-side MoE FFN layer benchmark for ik_llama.cpp's CPU backend (ggml + iqk).
//
// moe's own harness code, built against an ik_llama.cpp checkout outside this repository
// (bench/ik/build.sh; nothing of ik_llama.cpp is copied here). Not part of the CMake build.
// Builds ONE MoE FFN layer as a ggml graph with the op sequence of llm_build_moe_ffn
// (ik_llama.cpp src/llama-build-context.cpp at 8337e4cd):
//   router mul_mat (+ router bias for gpt-oss) -> gating (softmax for qwen3moe; raw logits for
//   gpt-oss "SOFTMAX_WEIGHT") -> top_k -> get_rows of the weights -> normalisation
//   (qwen3moe: sum_rows + div; gpt-oss: soft_max over the selected n_used)
//   -> up / gate MUL_MAT_ID (+ add_id expert biases for gpt-oss) -> activation
//   (qwen3moe: fused_mul_unary(gate, up, SILU); gpt-oss: swiglu_oai(gate, up, 1.702, 7.0))
//   -> down MUL_MAT_ID (+ add_id bias) -> mul by the expert weights -> multi_add (expert sum).
// gemma4 (src/graphs/build_gemma4.cpp: llm_build_moe_ffn with input logits, the merged
// ffn_gate_up_exps weight, LLM_FFN_GELU and ffn_down_exps_s): the router runs outside the layer
// (its logits are an input, as in moe's examples/gemma4.moe) -> softmax -> top_k -> get_rows
// -> sum_rows + div -> moe_up_gate on the merged tensor (gate rows first, then up rows; GELU)
// -> down MUL_MAT_ID -> the per-expert down scale (folded into the weights, or, with
// "+fused_ops", applied by mul_multi_add) -> weighting + sum. The merged tensor always takes
// ik's fused up-gate (llm_build_moe_ffn has no other path for it), so "stored" and
// "stored+fused_ops" differ in the weighting + sum only.
// Variant "+fused_ops" is ik_llama.cpp's default path (-fmoe / fused_mmad on):
//   moe_up_gate(_ext) (up, gate, activation, biases in one op) and mul_multi_add (weighting + sum).
// Variant "repacked(rtr)" repacks the expert tensors in place with iqk_repack_tensor(), exactly
// what llama.cpp's --rtr (run-time repack) does at load time: q8_0 -> q8_0_r8, q4_0 -> q4_0_r8,
// bf16 -> bf16_r16 (the latter only when the build has __AVX512BF16__). f32 has no repacked type.
//
// Output: CSV lines engine,variant,arch,type,T,threads,median_ms,min_ms,gflops_median
//   gflops = 2*T*n_used*3*n_embd*n_ff / median time.
// Realistic routing: 16 different random inputs cycled, one per run.
// Probes (--probes): FP32 FMA peak (AVX-512 or AVX2 FMA loop) and streaming read bandwidth.
// Check (--check): compares the graph output to a naive double-precision reference.

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"

#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <vector>

extern "C" void iqk_repack_tensor(struct ggml_tensor * tensor);   // ggml/src/iqk/iqk_quantize.h
extern "C" int  iqk_repacked_type(const struct ggml_tensor * tensor);

using clk = std::chrono::steady_clock;
static double now_s() { return std::chrono::duration<double>(clk::now().time_since_epoch()).count(); }

// ---------------------------------------------------------------------------------------------
// deterministic random numbers
static inline uint64_t splitmix64(uint64_t & s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
struct Rng {
    uint64_t s[2];
    explicit Rng(uint64_t seed) { uint64_t t = seed * 0x2545F4914F6CDD1Dull + 12345; s[0] = splitmix64(t); s[1] = splitmix64(t); }
    inline uint64_t next() { // xorshift128+
        uint64_t s1 = s[0]; const uint64_t s0 = s[1];
        s[0] = s0; s1 ^= s1 << 23; s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        return s[1] + s0;
    }
    // uniform in [-a, a)
    inline float uni(float a) { return a * ((float)(next() >> 40) * (2.0f / 16777216.0f) - 1.0f); }
};
static void fill_uniform(float * p, int64_t n, float a, uint64_t seed) {
    Rng r(seed);
    for (int64_t i = 0; i < n; ++i) p[i] = r.uni(a);
}

// ---------------------------------------------------------------------------------------------
struct Arch {
    std::string name;
    int64_t n_embd, n_ff, n_expert, n_used;
    bool oai;   // gpt-oss: router bias, expert biases, SOFTMAX_WEIGHT gating, swiglu_oai
    bool gemma; // gemma4: logits in, merged gate_up weight, GELU, per-expert down scale
};
static bool get_arch(const std::string & s, Arch & a) {
    if (s == "qwen3moe" || s == "qwen3") { a = {"qwen3moe", 2048, 768, 128, 8, false, false}; return true; }
    if (s == "gpt-oss"  || s == "gptoss"){ a = {"gpt-oss", 2880, 2880, 32, 4, true, false};  return true; }
    if (s == "gemma4")                   { a = {"gemma4", 2816, 704, 128, 8, false, true};   return true; }
    return false;
}
static bool get_type(const std::string & s, ggml_type & t) {
    if (s == "f32")  { t = GGML_TYPE_F32;  return true; }
    if (s == "bf16") { t = GGML_TYPE_BF16; return true; }
    if (s == "q8_0") { t = GGML_TYPE_Q8_0; return true; }
    if (s == "q4_0") { t = GGML_TYPE_Q4_0; return true; }
    return false;
}

static void * xalloc(size_t n) {
    n = (n + 63) & ~size_t(63);
    void * p = std::aligned_alloc(64, n ? n : 64);
    if (!p) { fprintf(stderr, "out of memory (%zu bytes)\n", n); exit(1); }
    return p;
}

// tensor ids for seeds
enum { TID_ROUTER = 1, TID_ROUTER_B, TID_UP, TID_GATE, TID_DOWN, TID_UP_B, TID_GATE_B, TID_DOWN_B, TID_DOWN_S,
       TID_X = 100, TID_LOGITS = 200 };
static uint64_t seed_of(int tid, int64_t e) { return 0xC0FFEEull + 1000003ull * tid + 7919ull * (uint64_t)e; }

// f32 values of one expert matrix (rows x cols, row-major: rows = output dim, cols = input dim)
static float amp_for(int64_t n_in) { return std::sqrt(3.0f / (float)n_in); }   // variance 1/n_in
static void gen_expert_f32(int tid, int64_t e, int64_t rows, int64_t cols, float * out) {
    fill_uniform(out, rows * cols, amp_for(cols), seed_of(tid, e));
}

struct Layer {
    Arch a;
    ggml_type type;
    ggml_context * ctx = nullptr;
    ggml_tensor * router = nullptr, * router_b = nullptr;
    ggml_tensor * up = nullptr, * gate = nullptr, * down = nullptr;
    ggml_tensor * up_b = nullptr, * gate_b = nullptr, * down_b = nullptr;
    ggml_tensor * down_s = nullptr;   // gemma4's per-expert down scale; `up` is then the merged gate_up
    std::vector<void *> bufs;
    bool repacked = false;
    ~Layer() { for (auto p : bufs) std::free(p); if (ctx) ggml_free(ctx); }
};

static ggml_tensor * new_w(Layer & L, ggml_type t, int64_t ne0, int64_t ne1, int64_t ne2, const char * name) {
    ggml_tensor * w = ne2 > 0 ? ggml_new_tensor_3d(L.ctx, t, ne0, ne1, ne2) : ggml_new_tensor_2d(L.ctx, t, ne0, ne1);
    ggml_set_name(w, name);
    w->data = xalloc(ggml_nbytes(w));
    L.bufs.push_back(w->data);
    return w;
}

// fill an expert tensor [cols, rows, n_expert] of type t with quantised random values (2 threads);
// a merged gate_up tensor (tid_hi != 0) holds expert e's tid rows first, then its tid_hi rows
static void fill_experts(ggml_tensor * w, int tid, int nthread, int tid_hi = 0) {
    const int64_t cols = w->ne[0], rows = w->ne[1], ne = w->ne[2];
    std::atomic<int64_t> next{0};
    auto work = [&]() {
        std::vector<float> tmp(rows * cols);
        for (;;) {
            int64_t e = next.fetch_add(1);
            if (e >= ne) break;
            if (tid_hi) {
                gen_expert_f32(tid,    e, rows / 2, cols, tmp.data());
                gen_expert_f32(tid_hi, e, rows / 2, cols, tmp.data() + rows / 2 * cols);
            } else {
                gen_expert_f32(tid, e, rows, cols, tmp.data());
            }
            char * dst = (char *)w->data + e * w->nb[2];
            if (w->type == GGML_TYPE_F32) std::memcpy(dst, tmp.data(), rows * cols * sizeof(float));
            else ggml_quantize_chunk(w->type, tmp.data(), dst, 0, rows, cols, nullptr, nullptr);
        }
    };
    std::vector<std::thread> th;
    for (int i = 1; i < nthread; ++i) th.emplace_back(work);
    work();
    for (auto & t : th) t.join();
}

static void make_layer(Layer & L, const Arch & a, ggml_type t, int nthread) {
    L.a = a; L.type = t;
    ggml_init_params ip = { 64 * ggml_tensor_overhead(), nullptr, true };
    L.ctx = ggml_init(ip);
    // warm quantisation tables once, single-threaded
    if (t != GGML_TYPE_F32) ggml_quantize_init(t);
    if (a.gemma) {   // the router is outside the layer; gate_up merged (gate rows first)
        L.up   = new_w(L, t, a.n_embd, 2 * a.n_ff, a.n_expert, "blk.0.ffn_gate_up_exps.weight");
        L.down = new_w(L, t, a.n_ff,   a.n_embd,   a.n_expert, "blk.0.ffn_down_exps.weight");
        fill_experts(L.up,   TID_GATE, nthread, TID_UP);
        fill_experts(L.down, TID_DOWN, nthread);
        L.down_s = new_w(L, GGML_TYPE_F32, a.n_expert, 1, 0, "blk.0.ffn_down_exps.scale");
        float * s = (float *)L.down_s->data;
        fill_uniform(s, a.n_expert, 0.5f, seed_of(TID_DOWN_S, 0));
        for (int64_t e = 0; e < a.n_expert; ++e) s[e] += 1.0f;   // in [0.5, 1.5)
        return;
    }
    L.router = new_w(L, GGML_TYPE_F32, a.n_embd, a.n_expert, 0, "blk.0.ffn_gate_inp.weight");
    fill_uniform((float *)L.router->data, a.n_embd * a.n_expert, amp_for(a.n_embd), seed_of(TID_ROUTER, 0));
    L.up   = new_w(L, t, a.n_embd, a.n_ff,   a.n_expert, "blk.0.ffn_up_exps.weight");
    L.gate = new_w(L, t, a.n_embd, a.n_ff,   a.n_expert, "blk.0.ffn_gate_exps.weight");
    L.down = new_w(L, t, a.n_ff,   a.n_embd, a.n_expert, "blk.0.ffn_down_exps.weight");
    fill_experts(L.up,   TID_UP,   nthread);
    fill_experts(L.gate, TID_GATE, nthread);
    fill_experts(L.down, TID_DOWN, nthread);
    if (a.oai) {
        L.router_b = new_w(L, GGML_TYPE_F32, a.n_expert, 1, 0, "blk.0.ffn_gate_inp.bias");
        fill_uniform((float *)L.router_b->data, a.n_expert, 0.1f, seed_of(TID_ROUTER_B, 0));
        L.up_b   = new_w(L, GGML_TYPE_F32, a.n_ff,   a.n_expert, 0, "blk.0.ffn_up_exps.bias");
        L.gate_b = new_w(L, GGML_TYPE_F32, a.n_ff,   a.n_expert, 0, "blk.0.ffn_gate_exps.bias");
        L.down_b = new_w(L, GGML_TYPE_F32, a.n_embd, a.n_expert, 0, "blk.0.ffn_down_exps.bias");
        fill_uniform((float *)L.up_b->data,   a.n_ff * a.n_expert,   0.1f, seed_of(TID_UP_B, 0));
        fill_uniform((float *)L.gate_b->data, a.n_ff * a.n_expert,   0.1f, seed_of(TID_GATE_B, 0));
        fill_uniform((float *)L.down_b->data, a.n_embd * a.n_expert, 0.1f, seed_of(TID_DOWN_B, 0));
    }
}

// what --rtr does: iqk_repack_tensor on every (non-view) host tensor; only the expert tensors change
static bool repack_layer(Layer & L) {
    ggml_tensor * all[] = { L.router, L.router_b, L.up, L.gate, L.down, L.up_b, L.gate_b, L.down_b, L.down_s };
    bool any = false;
    for (auto * w : all) {
        if (!w) continue;
        ggml_type before = w->type;
        iqk_repack_tensor(w);
        if (w->type != before) any = true;
    }
    L.repacked = any;
    return any;
}
static bool has_repacked_type(ggml_type t) {
    // mirror of get_repack_info() for the 4 types we care about
    ggml_tensor probe{};
    probe.type = t; probe.ne[0] = 256; probe.ne[1] = 16; probe.ne[2] = probe.ne[3] = 1;
    probe.nb[0] = ggml_type_size(t); probe.nb[1] = ggml_row_size(t, 256); probe.nb[2] = probe.nb[3] = 16 * probe.nb[1];
    std::strcpy(probe.name, "probe");
    return iqk_repacked_type(&probe) != (int)t;
}

// ---------------------------------------------------------------------------------------------
// Intermediates are placed by ggml's graph allocator (ggml_gallocr, as llama.cpp's scheduler does) and the
// graph runs through the CPU backend (ggml_backend_graph_compute). This matters: ik_llama.cpp fuses
// soft_max -> argsort -> get_rows into one iqk_topk_moe call that reads the soft_max node's buffer as the
// logits, which is only right when the allocator has placed soft_max in place on the router output.
static ggml_backend_t g_backend = nullptr;

struct Graph {
    ggml_context * ctx = nullptr;
    ggml_cgraph * gf = nullptr;
    ggml_gallocr_t galloc = nullptr;
    ggml_tensor * x = nullptr, * out = nullptr, * sel = nullptr, * logits = nullptr, * probs = nullptr;
    ggml_tensor * logits_in = nullptr;   // gemma4: the router's logits, an input
    ~Graph() { if (galloc) ggml_gallocr_free(galloc); if (ctx) ggml_free(ctx); }
};

static void build_graph(Graph & G, const Layer & L, int64_t T, bool fused, bool keep_sel) {
    const Arch & a = L.a;
    size_t mem = 2 * ggml_graph_overhead() + 256 * ggml_tensor_overhead();
    ggml_init_params ip = { mem, nullptr, true };
    G.ctx = ggml_init(ip);
    ggml_context * ctx = G.ctx;

    ggml_tensor * cur = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, a.n_embd, T);
    ggml_set_name(cur, "x");
    ggml_set_input(cur);
    G.x = cur;

    ggml_tensor * logits;
    if (a.gemma) {
        // The logits are an input. ik fuses soft_max -> argsort -> get_rows into iqk_topk_moe,
        // which reads the soft_max node's own buffer as the logits: right only when soft_max runs
        // in place on a computed node (in the model, the router's matmul). A scale by 1 stands
        // for that node (T x 128 floats, nothing beside the experts).
        G.logits_in = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, a.n_expert, T);
        ggml_set_name(G.logits_in, "logits");
        ggml_set_input(G.logits_in);
        logits = ggml_scale(ctx, G.logits_in, 1.0f);
    } else {
        logits = ggml_mul_mat(ctx, L.router, cur);                              // [n_expert, T]
    }
    if (L.router_b) logits = ggml_add(ctx, logits, L.router_b);
    ggml_tensor * probs = a.oai ? logits : ggml_soft_max(ctx, logits);        // SOFTMAX_WEIGHT : SOFTMAX
    ggml_tensor * selected = ggml_top_k(ctx, probs, (int)a.n_used);           // [n_used, T]
    G.sel = selected; G.logits = logits; G.probs = probs;
    if (keep_sel) ggml_set_output(selected->view_src ? selected->view_src : selected);   // --check reads it back
    ggml_tensor * weights = ggml_get_rows(ctx, ggml_reshape_3d(ctx, probs, 1, a.n_expert, T), selected); // [1, n_used, T]
    if (a.oai) {
        weights = ggml_reshape_2d(ctx, weights, a.n_used, T);
        weights = ggml_soft_max(ctx, weights);
        weights = ggml_reshape_3d(ctx, weights, 1, a.n_used, T);
    } else { // norm_w
        weights = ggml_reshape_2d(ctx, weights, a.n_used, T);
        ggml_tensor * wsum = ggml_sum_rows(ctx, weights);
        weights = ggml_div(ctx, weights, wsum);
        weights = ggml_reshape_3d(ctx, weights, 1, a.n_used, T);
    }

    G.gf = ggml_new_graph_custom(ctx, 256, false);
    ggml_build_forward_expand(G.gf, weights);

    cur = ggml_reshape_3d(ctx, cur, a.n_embd, 1, T);
    ggml_tensor * par;
    if (a.gemma) {   // the merged tensor: ik's fused up-gate whatever the variant
        par = ggml_moe_up_gate(ctx, L.up, nullptr, cur, selected, GGML_UNARY_OP_GELU);
        *((float *)(par->op_params + 1)) = 0.0f;
    } else if (fused) {
        if (a.oai) {
            par = ggml_moe_up_gate_ext(ctx, L.up, L.gate, cur, selected, L.up_b, L.gate_b, GGML_UNARY_OP_SWIGLU_OAI);
        } else {
            par = ggml_moe_up_gate(ctx, L.up, L.gate, cur, selected, GGML_UNARY_OP_SILU);
        }
        *((float *)(par->op_params + 1)) = 0.0f;  // swiglu_limit(il) is 0 for both models
    } else {
        ggml_tensor * up = ggml_mul_mat_id(ctx, L.up, cur, selected);     // [n_ff, n_used, T]
        ggml_tensor * gate = ggml_mul_mat_id(ctx, L.gate, cur, selected); // [n_ff, n_used, T]
        ggml_build_forward_expand(G.gf, up);
        ggml_build_forward_expand(G.gf, gate);
        if (L.up_b)   up   = ggml_add_id(ctx, up,   L.up_b,   selected);
        if (L.gate_b) gate = ggml_add_id(ctx, gate, L.gate_b, selected);
        if (a.oai) {
            par = ggml_swiglu_oai(ctx, gate, up, 1.702f, 7.0f);
        } else {
            par = ggml_fused_mul_unary(ctx, gate, up, GGML_UNARY_OP_SILU);
            *((float *)(par->op_params + 1)) = 0.0f;
        }
    }
    ggml_tensor * experts = ggml_mul_mat_id(ctx, L.down, par, selected);     // [n_embd, n_used, T]
    if (L.down_b) experts = ggml_add_id(ctx, experts, L.down_b, selected);
    if (L.down_s && !fused) {   // the down scale folded into the weights, as without fused_mmad
        ggml_tensor * s = ggml_reshape_3d(ctx, L.down_s, 1, a.n_expert, 1);
        s = ggml_repeat_4d(ctx, s, 1, a.n_expert, T, 1);
        s = ggml_get_rows(ctx, s, selected);
        ggml_tensor * w2 = ggml_mul(ctx, ggml_reshape_2d(ctx, weights, a.n_used, T), ggml_reshape_2d(ctx, s, a.n_used, T));
        weights = ggml_reshape_3d(ctx, w2, 1, a.n_used, T);
    }
    ggml_tensor * result;
    if (fused) {
        result = ggml_mul_multi_add(ctx, experts, weights);                  // [n_embd, T]
        if (L.down_s) { result->src[2] = L.down_s; result->src[3] = selected; }
    } else {
        experts = ggml_mul(ctx, experts, weights);
        result = ggml_multi_add(ctx, ggml_view_2d(ctx, experts, a.n_embd, T, experts->nb[2], 0), (int)a.n_used);
    }
    ggml_set_name(result, "moe_out");
    ggml_set_output(result);
    G.out = result;
    ggml_build_forward_expand(G.gf, result);

    G.galloc = ggml_gallocr_new(ggml_backend_cpu_buffer_type());
    if (!ggml_gallocr_alloc_graph(G.galloc, G.gf)) { fprintf(stderr, "ggml_gallocr_alloc_graph failed\n"); exit(1); }
}

static void compute(Graph & G) {
    ggml_status st = ggml_backend_graph_compute(g_backend, G.gf);
    if (st != GGML_STATUS_SUCCESS) { fprintf(stderr, "ggml_backend_graph_compute failed (%d)\n", (int)st); exit(1); }
}

// ---------------------------------------------------------------------------------------------
// naive reference (double accumulation) from either the dequantised stored weights or the
// original f32 values (regenerated from the seeds)
static void dequant_rows(const ggml_tensor * w, int64_t e, int64_t r0, int64_t nr, float * out) {
    const int64_t cols = w->ne[0];
    for (int64_t r = 0; r < nr; ++r) {
        const char * src = (const char *)w->data + e * w->nb[2] + (r0 + r) * w->nb[1];
        float * y = out + r * cols;
        if (w->type == GGML_TYPE_F32) std::memcpy(y, src, cols * sizeof(float));
        else if (w->type == GGML_TYPE_BF16) ggml_bf16_to_fp32_row((const ggml_bf16_t *)src, y, cols);
        else ggml_internal_get_type_traits(w->type).to_float(src, y, cols);
    }
}

struct RefOut { std::vector<float> y; std::vector<int> sel; };

// lg_in: gemma4's input logits [T, n_expert] (nullptr: the router computes them from x)
static void reference(const Layer & L, const float * x, const float * lg_in, int64_t T, bool from_f32, RefOut & R) {
    const Arch & a = L.a;
    R.y.assign(T * a.n_embd, 0.0f);
    R.sel.assign(T * a.n_used, -1);
    std::vector<float> Wu(a.n_ff * a.n_embd), Wg(a.n_ff * a.n_embd), Wd(a.n_embd * a.n_ff);
    const float * router = L.router ? (const float *)L.router->data : nullptr;
    // routing for all tokens first
    std::vector<double> wts(T * a.n_used);
    for (int64_t t = 0; t < T; ++t) {
        const float * xt = x + t * a.n_embd;
        std::vector<double> lg(a.n_expert);
        for (int64_t e = 0; e < a.n_expert; ++e) {
            if (lg_in) { lg[e] = lg_in[t * a.n_expert + e]; continue; }
            double s = 0; for (int64_t k = 0; k < a.n_embd; ++k) s += (double)router[e * a.n_embd + k] * xt[k];
            if (L.router_b) s += ((const float *)L.router_b->data)[e];
            lg[e] = s;
        }
        std::vector<double> pr = lg;
        if (!a.oai) { double m = *std::max_element(pr.begin(), pr.end()), z = 0; for (auto & p : pr) { p = std::exp(p - m); z += p; } for (auto & p : pr) p /= z; }
        std::vector<int> idx(a.n_expert); for (int i = 0; i < (int)a.n_expert; ++i) idx[i] = i;
        std::partial_sort(idx.begin(), idx.begin() + a.n_used, idx.end(), [&](int i, int j) { return pr[i] > pr[j]; });
        double z = 0, m = pr[idx[0]];
        for (int j = 0; j < a.n_used; ++j) { R.sel[t * a.n_used + j] = idx[j]; }
        if (a.oai) { for (int j = 0; j < a.n_used; ++j) { wts[t*a.n_used+j] = std::exp(pr[idx[j]] - m); z += wts[t*a.n_used+j]; } }
        else       { for (int j = 0; j < a.n_used; ++j) { wts[t*a.n_used+j] = pr[idx[j]]; z += wts[t*a.n_used+j]; } }
        for (int j = 0; j < a.n_used; ++j) wts[t*a.n_used+j] /= z;
    }
    // per expert: load matrices once, process all tokens routed to it
    std::vector<double> h(a.n_ff);
    for (int64_t e = 0; e < a.n_expert; ++e) {
        bool used = false;
        for (int64_t i = 0; i < T * a.n_used; ++i) used |= R.sel[i] == e;
        if (!used) continue;
        if (from_f32) {
            gen_expert_f32(TID_UP,   e, a.n_ff,   a.n_embd, Wu.data());
            gen_expert_f32(TID_GATE, e, a.n_ff,   a.n_embd, Wg.data());
            gen_expert_f32(TID_DOWN, e, a.n_embd, a.n_ff,   Wd.data());
        } else if (a.gemma) {   // merged: gate rows, then up rows
            dequant_rows(L.up,   e, 0,      a.n_ff, Wg.data());
            dequant_rows(L.up,   e, a.n_ff, a.n_ff, Wu.data());
            dequant_rows(L.down, e, 0, a.n_embd, Wd.data());
        } else {
            dequant_rows(L.up,   e, 0, a.n_ff,   Wu.data());
            dequant_rows(L.gate, e, 0, a.n_ff,   Wg.data());
            dequant_rows(L.down, e, 0, a.n_embd, Wd.data());
        }
        for (int64_t t = 0; t < T; ++t) for (int j = 0; j < a.n_used; ++j) {
            if (R.sel[t * a.n_used + j] != e) continue;
            const float * xt = x + t * a.n_embd;
            for (int64_t f = 0; f < a.n_ff; ++f) {
                double u = 0, g = 0;
                for (int64_t k = 0; k < a.n_embd; ++k) { u += (double)Wu[f * a.n_embd + k] * xt[k]; g += (double)Wg[f * a.n_embd + k] * xt[k]; }
                if (a.oai) {
                    u += ((const float *)L.up_b->data)[e * a.n_ff + f];
                    g += ((const float *)L.gate_b->data)[e * a.n_ff + f];
                    double xg = std::min(g, 7.0), yl = std::max(std::min(u, 7.0), -7.0);
                    h[f] = xg / (1.0 + std::exp(-1.702 * xg)) * (yl + 1.0);
                } else if (a.gemma) {   // tanh GELU (ggml's GELU)
                    h[f] = 0.5 * g * (1.0 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g))) * u;
                } else {
                    h[f] = g / (1.0 + std::exp(-g)) * u;
                }
            }
            for (int64_t o = 0; o < a.n_embd; ++o) {
                double s = 0;
                for (int64_t f = 0; f < a.n_ff; ++f) s += (double)Wd[o * a.n_ff + f] * h[f];
                if (a.oai) s += ((const float *)L.down_b->data)[e * a.n_embd + o];
                if (L.down_s) s *= ((const float *)L.down_s->data)[e];
                R.y[t * a.n_embd + o] += (float)(wts[t * a.n_used + j] * s);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
static double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Opts {
    std::string arch = "qwen3moe", type = "q8_0";
    std::vector<int64_t> Ts = {1, 128, 512};
    std::vector<std::string> variants = {"stored", "stored+fused_ops", "repacked", "repacked+fused_ops"};
    int threads = 2;
    int reps = 0;            // fixed number of timed runs (0 = adaptive)
    int min_reps = 16, max_reps = 2000;
    double min_time = 2.0;   // seconds of timed runs (adaptive mode)
    int warmup = -1;         // -1 = adaptive (16 runs or 1 s, at least 2)
    int n_inputs = 16;
    bool header = true, probes = false, check = false, bench = true;
    int64_t check_T = 7;
    size_t membw_mib = 1024;
    size_t flush_mib = 0;    // read this many MiB before each run, untimed (0 = none)
};

static std::vector<std::string> split(const std::string & s, char c) {
    std::vector<std::string> r; size_t p = 0;
    for (;;) { size_t q = s.find(c, p); r.push_back(s.substr(p, q - p)); if (q == std::string::npos) break; p = q + 1; }
    return r;
}

static std::string variant_label(const std::string & v) {
    if (v == "stored") return "stored";
    if (v == "stored+fused_ops") return "stored+fused_ops";
    if (v == "repacked") return "repacked(rtr)";
    if (v == "repacked+fused_ops") return "repacked(rtr)+fused_ops";
    return v;
}

static void run_bench(const Opts & o, Layer & L, const std::string & variant, int64_t T) {
    const Arch & a = L.a;
    const bool fused = variant.find("fused") != std::string::npos;
    Graph G;
    build_graph(G, L, T, fused, false);
    // 16 different random inputs
    std::vector<std::vector<float>> xs(o.n_inputs, std::vector<float>(T * a.n_embd));
    for (int i = 0; i < o.n_inputs; ++i) fill_uniform(xs[i].data(), T * a.n_embd, 1.0f, seed_of(TID_X, 1000 * T + i));
    const size_t xbytes = T * a.n_embd * sizeof(float);
    // gemma4: the router's logits, uniform in [-1, 1) as moe's MoeLayerBench makes its `logits` input
    std::vector<std::vector<float>> lgs(G.logits_in ? o.n_inputs : 0, std::vector<float>(T * a.n_expert));
    for (size_t i = 0; i < lgs.size(); ++i) fill_uniform(lgs[i].data(), T * a.n_expert, 1.0f, seed_of(TID_LOGITS, 1000 * T + i));
    int it = 0;
    // --flush-mib: the layer's weights leave the caches before each run, as a real model's
    // other layers push them out between two tokens: one load per cache line, untimed, on
    // --threads threads, so that no core idles meanwhile (a VM's idle core comes back slow)
    std::vector<char> flush(o.flush_mib << 20, 1);
    auto flush_share = [&](int i) {
        size_t n = flush.size(), lo = n / o.threads * i, hi = i + 1 == o.threads ? n : n / o.threads * (i + 1);
        unsigned sink = 0;
        for (size_t j = lo; j < hi; j += 64) sink += (unsigned char)flush[j];
        asm volatile("" : : "r"(sink));
    };
    auto run_once = [&]() -> double {
        std::memcpy(G.x->data, xs[it % o.n_inputs].data(), xbytes);   // not timed
        if (G.logits_in) std::memcpy(G.logits_in->data, lgs[it % o.n_inputs].data(), T * a.n_expert * sizeof(float));
        if (!flush.empty()) {
            std::vector<std::thread> helpers;
            for (int i = 1; i < o.threads; ++i) helpers.emplace_back(flush_share, i);
            flush_share(0);
            for (auto & h : helpers) h.join();
        }
        ++it;
        double t0 = now_s();
        compute(G);
        return now_s() - t0;
    };
    // warm-up
    {
        double tw = 0; int nw = 0;
        int wmax = o.warmup >= 0 ? o.warmup : o.n_inputs;
        while (nw < wmax) { tw += run_once(); ++nw; if (o.warmup < 0 && nw >= 2 && tw > 1.0) break; }
    }
    it = 0;
    std::vector<double> ts;
    double tsum = 0;
    for (;;) {
        double t = run_once(); ts.push_back(t); tsum += t;
        int n = (int)ts.size();
        if (o.reps > 0) { if (n >= o.reps) break; continue; }
        // adaptive: whole cycles of the inputs only, so every input weighs the same in the median
        if (n % o.n_inputs != 0) continue;
        if (n >= o.max_reps) break;
        if (n >= o.min_reps && tsum >= o.min_time) break;
    }
    double med = median_of(ts), mn = *std::min_element(ts.begin(), ts.end());
    double flops = 2.0 * T * a.n_used * 3.0 * a.n_embd * a.n_ff;
    printf("ik_llama,%s,%s,%s,%lld,%d,%.4f,%.4f,%.2f\n", variant_label(variant).c_str(), a.name.c_str(), o.type.c_str(),
           (long long)T, o.threads, med * 1e3, mn * 1e3, flops / med * 1e-9);
    fflush(stdout);
    fprintf(stderr, "  %s %s %s T=%lld: %zu timed runs, median %.3f ms, min %.3f ms\n", a.name.c_str(), o.type.c_str(),
            variant_label(variant).c_str(), (long long)T, ts.size(), med * 1e3, mn * 1e3);
}

static void run_check(const Opts & o, Layer & L, const std::string & variant, const RefOut & Rq, const RefOut & Rf,
                      const std::vector<float> & x, const std::vector<float> & lg, int64_t T) {
    const Arch & a = L.a;
    const bool fused = variant.find("fused") != std::string::npos;
    Graph G;
    build_graph(G, L, T, fused, true);
    std::memcpy(G.x->data, x.data(), x.size() * sizeof(float));
    if (G.logits_in) std::memcpy(G.logits_in->data, lg.data(), lg.size() * sizeof(float));
    compute(G);
    const float * y = (const float *)G.out->data;
    // selected experts (top_k result is a view with row stride nb[1])
    int mism_tok = 0;
    std::vector<bool> tok_ok(T, true);
    for (int64_t t = 0; t < T; ++t) {
        const int32_t * s = (const int32_t *)((const char *)G.sel->data + t * G.sel->nb[1]);
        std::vector<int> gs(s, s + a.n_used), rs(Rq.sel.begin() + t * a.n_used, Rq.sel.begin() + (t + 1) * a.n_used);
        std::sort(gs.begin(), gs.end()); std::sort(rs.begin(), rs.end());
        if (gs != rs) {
            tok_ok[t] = false; ++mism_tok;
            if (getenv("MOEBENCH_DEBUG") && L.router) {
                const float * lg = (const float *)((const char *)G.logits->data + t * G.logits->nb[1]);
                double s0 = 0; for (int64_t k = 0; k < a.n_embd; ++k) s0 += (double)((const float *)L.router->data)[k] * x[t * a.n_embd + k];
                fprintf(stderr, "token %lld logit[0] graph %g ref %g (graph value only meaningful if not overwritten in place)\n", (long long)t, lg[0], s0);
                fprintf(stderr, "token %lld graph:", (long long)t); for (int v : gs) fprintf(stderr, " %d", v);
                fprintf(stderr, " | ref:"); for (int v : rs) fprintf(stderr, " %d", v); fprintf(stderr, "\n");
            }
        }
    }
    auto err = [&](const RefOut & R, double & rel, double & maxabs, double & refnorm) {
        double num = 0, den = 0; maxabs = 0;
        for (int64_t t = 0; t < T; ++t) {
            if (!tok_ok[t]) continue;
            for (int64_t i = 0; i < a.n_embd; ++i) {
                double d = (double)y[t * a.n_embd + i] - R.y[t * a.n_embd + i];
                num += d * d; den += (double)R.y[t * a.n_embd + i] * R.y[t * a.n_embd + i];
                maxabs = std::max(maxabs, std::fabs(d));
            }
        }
        rel = den > 0 ? std::sqrt(num / den) : 0; refnorm = std::sqrt(den);
    };
    double rq, mq, nq, rf, mf, nf;
    err(Rq, rq, mq, nq);
    err(Rf, rf, mf, nf);
    printf("# check %s %s %s T=%lld (weights as %s): rel_l2_err vs dequantised-weight ref %.3e (max abs %.3e), "
           "vs original-f32-weight ref %.3e; routing mismatches %d/%lld tokens; |ref|=%.3f\n",
           a.name.c_str(), o.type.c_str(), variant_label(variant).c_str(), (long long)T, ggml_type_name(L.up->type),
           rq, mq, rf, mism_tok, (long long)T, nq);
    fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// probes
#if defined(__AVX512F__)
#define PROBE_ISA "avx512"
typedef __m512 vfl;
static inline vfl vset1(float a) { return _mm512_set1_ps(a); }
static inline vfl vfma(vfl a, vfl b, vfl c) { return _mm512_fmadd_ps(a, b, c); }
static inline vfl vadd(vfl a, vfl b) { return _mm512_add_ps(a, b); }
static inline vfl vload(const float * p) { return _mm512_load_ps(p); }
static inline float vsum(vfl a) { alignas(64) float t[16]; _mm512_store_ps(t, a); float s = 0; for (float v : t) s += v; return s; }
static constexpr int VL = 16;
#elif defined(__AVX2__) && defined(__FMA__)
#define PROBE_ISA "avx2"
typedef __m256 vfl;
static inline vfl vset1(float a) { return _mm256_set1_ps(a); }
static inline vfl vfma(vfl a, vfl b, vfl c) { return _mm256_fmadd_ps(a, b, c); }
static inline vfl vadd(vfl a, vfl b) { return _mm256_add_ps(a, b); }
static inline vfl vload(const float * p) { return _mm256_load_ps(p); }
static inline float vsum(vfl a) { float t[8]; _mm256_storeu_ps(t, a); float s = 0; for (float v : t) s += v; return s; }
static constexpr int VL = 8;
#else
#error "needs AVX2+FMA or AVX-512"
#endif

static volatile float g_sink;

__attribute__((noinline)) static float fma_loop(int64_t iters) {
    // 16 independent accumulators (>= FMA latency x throughput), kept in registers
    vfl a0 = vset1(0.000f), a1 = vset1(0.001f), a2 = vset1(0.002f), a3 = vset1(0.003f);
    vfl a4 = vset1(0.004f), a5 = vset1(0.005f), a6 = vset1(0.006f), a7 = vset1(0.007f);
    vfl a8 = vset1(0.008f), a9 = vset1(0.009f), a10 = vset1(0.010f), a11 = vset1(0.011f);
    vfl a12 = vset1(0.012f), a13 = vset1(0.013f), a14 = vset1(0.014f), a15 = vset1(0.015f);
    const vfl m = vset1(0.9999999f), c = vset1(1e-7f);
    for (int64_t k = 0; k < iters; ++k) {
        a0 = vfma(a0, m, c); a1 = vfma(a1, m, c); a2 = vfma(a2, m, c); a3 = vfma(a3, m, c);
        a4 = vfma(a4, m, c); a5 = vfma(a5, m, c); a6 = vfma(a6, m, c); a7 = vfma(a7, m, c);
        a8 = vfma(a8, m, c); a9 = vfma(a9, m, c); a10 = vfma(a10, m, c); a11 = vfma(a11, m, c);
        a12 = vfma(a12, m, c); a13 = vfma(a13, m, c); a14 = vfma(a14, m, c); a15 = vfma(a15, m, c);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
        __asm__ volatile("" : "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11), "+v"(a12), "+v"(a13), "+v"(a14), "+v"(a15));
    }
    vfl s = vadd(vadd(vadd(vadd(a0, a1), vadd(a2, a3)), vadd(vadd(a4, a5), vadd(a6, a7))),
                 vadd(vadd(vadd(a8, a9), vadd(a10, a11)), vadd(vadd(a12, a13), vadd(a14, a15))));
    return vsum(s);
}

static void parallel_run(int nth, const std::function<void(int)> & f) {
    std::atomic<int> ready{0}; std::atomic<bool> go{false};
    std::vector<std::thread> th;
    for (int i = 0; i < nth; ++i) th.emplace_back([&, i]() { ready++; while (!go.load()) {} f(i); });
    while (ready.load() < nth) {}
    go = true;
    for (auto & t : th) t.join();
}

static double fma_peak(int nth) {
    const int64_t iters = 40 * 1000 * 1000;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        std::vector<float> r(nth);
        std::atomic<int> ready{0}; std::atomic<bool> go{false};
        double t0 = 0;
        std::vector<std::thread> th;
        for (int i = 0; i < nth; ++i) th.emplace_back([&, i]() { ready++; while (!go.load()) {} r[i] = fma_loop(iters); });
        while (ready.load() < nth) {}
        t0 = now_s(); go = true;
        for (auto & t : th) t.join();
        double dt = now_s() - t0;
        for (float v : r) g_sink = v;
        double gf = (double)nth * iters * 16 * VL * 2 / dt * 1e-9;
        best = std::max(best, gf);
    }
    return best;
}

static std::string membw(float * buf, size_t n, int nth) {
    std::vector<double> gbs;
    double checksum = 0;
    for (int rep = 0; rep < 5; ++rep) {
        std::vector<double> part(nth);
        std::atomic<int> ready{0}; std::atomic<bool> go{false};
        std::vector<std::thread> th;
        for (int i = 0; i < nth; ++i) th.emplace_back([&, i]() {
            size_t chunk = n / nth / 1024 * 1024, b = i * chunk, e = i == nth - 1 ? n : b + chunk;
            ready++; while (!go.load()) {}
            vfl a0 = vset1(0), a1 = vset1(0), a2 = vset1(0), a3 = vset1(0);
            for (size_t k = b; k < e; k += 4 * VL) {
                a0 = vadd(a0, vload(buf + k)); a1 = vadd(a1, vload(buf + k + VL));
                a2 = vadd(a2, vload(buf + k + 2 * VL)); a3 = vadd(a3, vload(buf + k + 3 * VL));
            }
            part[i] = vsum(vadd(vadd(a0, a1), vadd(a2, a3)));
        });
        while (ready.load() < nth) {}
        double t0 = now_s(); go = true;
        for (auto & t : th) t.join();
        double dt = now_s() - t0;
        gbs.push_back(n * sizeof(float) / dt * 1e-9);
        checksum = 0; for (double p : part) checksum += p;
    }
    std::sort(gbs.begin(), gbs.end());
    char s[256];
    snprintf(s, sizeof(s), "membw read: %zu MiB, threads=%d, best %.2f GB/s, median %.2f GB/s, worst %.2f GB/s (checksum %.6g)",
             n * sizeof(float) >> 20, nth, gbs.back(), gbs[gbs.size() / 2], gbs.front(), checksum);
    return s;
}

static void run_probes(const Opts & o) {
    char tbuf[32]; time_t tt = time(nullptr); strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&tt));
    std::string line = std::string("# probes ") + tbuf + ": ";
    char s[128];
    snprintf(s, sizeof(s), "fma_peak widest(%s): threads=%d %.1f GFLOP/s", PROBE_ISA, o.threads, fma_peak(o.threads));
    line += s;
    if (o.threads != 1) { snprintf(s, sizeof(s), " | fma_peak widest(%s): threads=1 %.1f GFLOP/s", PROBE_ISA, fma_peak(1)); line += s; }
    size_t n = o.membw_mib * (1ull << 20) / sizeof(float);
    float * buf = (float *)xalloc(n * sizeof(float));
    parallel_run(o.threads, [&](int i) {   // first touch, split like the readers
        size_t chunk = n / o.threads / 1024 * 1024, b = i * chunk, e = i == o.threads - 1 ? n : b + chunk;
        for (size_t k = b; k < e; ++k) buf[k] = (float)((k * 2654435761u) & 1023) * (1.0f / 1024);
    });
    line += " | " + membw(buf, n, 1);
    if (o.threads != 1) line += " | " + membw(buf, n, o.threads);
    std::free(buf);
    printf("%s\n", line.c_str());
    fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
static void usage() {
    fprintf(stderr,
        "usage: moebench [options]\n"
        "  --arch qwen3moe|gpt-oss|gemma4 (default qwen3moe)\n"
        "  --type f32|bf16|q8_0|q4_0    expert weight type (default q8_0)\n"
        "  --T 1,128,512                token counts\n"
        "  --variants stored,stored+fused_ops,repacked,repacked+fused_ops\n"
        "                               (repacked* skipped when the type has no repacked form)\n"
        "  --threads N                  (default 2)\n"
        "  --reps N                     fixed number of timed runs (default: adaptive: whole cycles of the 16 inputs,\n"
        "                               >= --min-reps (16) runs and >= --min-time (2 s), <= --max-reps (2000))\n"
        "  --min-reps N --max-reps N --min-time S\n"
        "  --flush-mib N                read N MiB before each run (untimed), so the weights are not cached\n"
        "  --warmup N                   untimed runs first (default: up to 16, stopping after >= 2 runs and > 1 s)\n"
        "  --probes                     print FMA-peak and DRAM-read probes as # lines\n"
        "  --probes-only                probes, nothing else\n"
        "  --check [T]                  compare graph output with a naive reference (default T=7), no timing\n"
        "  --no-header                  do not print the CSV header\n");
}

int main(int argc, char ** argv) {
    Opts o;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        auto nxt = [&]() -> std::string { if (i + 1 >= argc) { usage(); exit(1); } return argv[++i]; };
        if (s == "--arch") o.arch = nxt();
        else if (s == "--type") o.type = nxt();
        else if (s == "--T") { o.Ts.clear(); for (auto & t : split(nxt(), ',')) o.Ts.push_back(std::atoll(t.c_str())); }
        else if (s == "--variants") o.variants = split(nxt(), ',');
        else if (s == "--threads") o.threads = std::atoi(nxt().c_str());
        else if (s == "--reps") o.reps = std::atoi(nxt().c_str());
        else if (s == "--min-reps") o.min_reps = std::atoi(nxt().c_str());
        else if (s == "--max-reps") o.max_reps = std::atoi(nxt().c_str());
        else if (s == "--min-time") o.min_time = std::atof(nxt().c_str());
        else if (s == "--warmup") o.warmup = std::atoi(nxt().c_str());
        else if (s == "--probes") o.probes = true;
        else if (s == "--probes-only") { o.probes = true; o.bench = false; }
        else if (s == "--membw-mib") o.membw_mib = std::atoll(nxt().c_str());
        else if (s == "--flush-mib") o.flush_mib = std::atoll(nxt().c_str());
        else if (s == "--check") { o.check = true; o.bench = false; if (i + 1 < argc && argv[i + 1][0] != '-') o.check_T = std::atoll(argv[++i]); }
        else if (s == "--no-header") o.header = false;
        else { usage(); return 1; }
    }
    Arch a; ggml_type t;
    if (!get_arch(o.arch, a) || !get_type(o.type, t)) { usage(); return 1; }

    // ggml global state (fp16 tables etc.); this context is otherwise unused
    ggml_init_params ip0 = { 1024, nullptr, true };
    ggml_context * ctx0 = ggml_init(ip0);
    g_backend = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(g_backend, o.threads);

    if (o.header && o.bench) printf("engine,variant,arch,type,T,threads,median_ms,min_ms,gflops_median\n");
    if (o.probes) run_probes(o);
    if (!o.bench && !o.check) { ggml_backend_free(g_backend); ggml_free(ctx0); return 0; }

    const bool can_repack = has_repacked_type(t);
    double t0 = now_s();
    Layer L;
    make_layer(L, a, t, o.threads);
    fprintf(stderr, "# %s %s: weights generated in %.1f s (experts %.1f MiB)\n", a.name.c_str(), o.type.c_str(), now_s() - t0,
            (ggml_nbytes(L.up) + (L.gate ? ggml_nbytes(L.gate) : 0) + ggml_nbytes(L.down)) / 1048576.0);

    std::vector<std::string> stored_v, rep_v;
    for (auto & v : o.variants) {
        if (v.rfind("stored", 0) == 0) stored_v.push_back(v);
        else if (v.rfind("repacked", 0) == 0) { if (can_repack) rep_v.push_back(v); else fprintf(stderr, "# %s has no repacked type: skipping %s\n", o.type.c_str(), v.c_str()); }
        else { fprintf(stderr, "unknown variant %s\n", v.c_str()); return 1; }
    }

    if (o.check) {
        const int64_t T = o.check_T;
        std::vector<float> x(T * a.n_embd);
        fill_uniform(x.data(), x.size(), 1.0f, seed_of(TID_X, 999999));
        std::vector<float> lg(a.gemma ? T * a.n_expert : 0);
        fill_uniform(lg.data(), lg.size(), 1.0f, seed_of(TID_LOGITS, 999999));
        const float * lgp = a.gemma ? lg.data() : nullptr;
        RefOut Rq, Rf;
        reference(L, x.data(), lgp, T, false, Rq);   // from the stored (quantised) weights, before any repacking
        reference(L, x.data(), lgp, T, true,  Rf);   // from the original f32 values
        for (auto & v : stored_v) run_check(o, L, v, Rq, Rf, x, lg, T);
        if (!rep_v.empty()) {
            repack_layer(L);
            for (auto & v : rep_v) run_check(o, L, v, Rq, Rf, x, lg, T);
        }
    } else {
        for (auto & v : stored_v) for (auto T : o.Ts) run_bench(o, L, v, T);
        if (!rep_v.empty()) {
            double tr = now_s();
            repack_layer(L);
            fprintf(stderr, "# repacked to %s in %.1f s\n", ggml_type_name(L.up->type), now_s() - tr);
            for (auto & v : rep_v) for (auto T : o.Ts) run_bench(o, L, v, T);
        }
    }
    ggml_backend_free(g_backend);
    ggml_free(ctx0);
    return 0;
}
