// `linattn run --scenario serving`: continuous batching over a LinearAttention state pool, the
// way a serving engine drives the operator. Requests arrive at random (Poisson arrivals), get a
// group of pool slots, prefill in chunks continued from their pooled state, then decode (one
// token per step, or speculative steps of 1 + spec_len tokens with a random number accepted),
// and free their slots when done. Every step is one packed call (cu_seqlens, state_indices,
// has_initial_state, a PAD entry on odd steps) with in-kernel q/k L2 norm and gating from raw
// projections, plus one speculative call (state_indices (N, T_s), num_accepted_tokens) when
// speculative decoding is on. The same calls run on the oracle (reference backend) with its own
// pool; outputs of every call and the final pools are compared. On the CUDA backend the pool,
// the inputs and the index tensors live in device memory (copied per call, outside the timed
// region), and every call's error flag is read back and must be 0.
#include "run_serving.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <random>
#include <vector>

#include "device_buffer.hpp"

namespace linattn::tool {
namespace {

struct Request {
  int prompt = 0, gen = 0, prefilled = 0, generated = 0;
  int group = -1;  // owns slots group*T_s .. group*T_s + T_s - 1
  int cur = 0;     // the slot of the group holding its state
};

// One sequence of a call.
struct Entry {
  Request* r;  // nullptr = PAD
  int len;
};

const char* backend_name(linattn_backend b) {
  return b == LINATTN_BACKEND_CUDA ? "cuda" : b == LINATTN_BACKEND_CPU ? "cpu" : "reference";
}

struct Phase {
  double secs = 0;
  int64_t tokens = 0, calls = 0;
};

class Simulation {
 public:
  Simulation(const ServingScenarioOptions& o, Context& ctx, Context& oracle)
      : o_(o), ctx_(ctx), oracle_(oracle), rng_(static_cast<uint64_t>(o.seed)) {
    Ts_ = o.spec_len + 1;
    slots_ = int64_t{o.pool_seqs} * Ts_;
    block_ = int64_t{o.kv_heads} * o.dk * o.dv;
    pool_.assign(static_cast<size_t>(slots_ * block_), 0.f);
    ref_pool_ = pool_;
    A_log_.resize(o.kv_heads);
    dt_bias_.resize(o.kv_heads);
    std::normal_distribution<double> n01;
    for (int h = 0; h < o.kv_heads; ++h) {
      A_log_[h] = static_cast<float>(std::log(0.5 + 0.5 * std::abs(n01(rng_))));
      dt_bias_[h] = static_cast<float>(n01(rng_));
    }
    for (int g = o.pool_seqs - 1; g >= 0; --g) free_.push_back(g);
  }

  // On the CUDA backend: the device pool (zeros, like the host one). False with a message.
  bool init_device() {
    if (o_.backend != LINATTN_BACKEND_CUDA) return true;
    std::string err;
    const size_t bytes = pool_.size() * sizeof(float);
    if (!dev_pool_.allocate(bytes, &err) || !dev_pool_.upload(pool_.data(), bytes, &err) ||
        !dev_flag_.allocate(sizeof(int32_t), &err)) {
      std::fprintf(stderr, "error: device pool: %s\n", err.c_str());
      return false;
    }
    return true;
  }

  int run() {
    std::poisson_distribution<int> arrivals(o_.arrival_rate);
    std::uniform_int_distribution<int> prompt(o_.prompt_min, o_.prompt_max);
    std::uniform_int_distribution<int> gen(o_.gen_min, o_.gen_max);
    int64_t finished = 0, arrived = 0;
    for (int step = 0; step < o_.steps; ++step) {
      for (int a = arrivals(rng_); a > 0; --a, ++arrived) waiting_.push_back({prompt(rng_), gen(rng_)});
      while (!waiting_.empty() && !free_.empty()) {
        Request r = waiting_.front();
        waiting_.pop_front();
        r.group = free_.back();
        free_.pop_back();
        active_.push_back(r);
      }
      // The packed call: prefill chunks, plain decodes, a PAD entry on odd steps.
      std::vector<Entry> mixed;
      std::vector<Entry> spec;
      for (Request& r : active_) {
        if (r.prefilled < r.prompt) {
          mixed.push_back({&r, std::min(o_.prefill_chunk, r.prompt - r.prefilled)});
        } else if (o_.spec_len == 0) {
          mixed.push_back({&r, 1});
        } else {
          spec.push_back({&r, Ts_});
        }
      }
      if (step % 2 == 1 && !mixed.empty()) mixed.insert(mixed.begin() + mixed.size() / 2, {nullptr, 1});
      if (!mixed.empty() && !call(mixed, false)) return kExitFailure;
      if (!spec.empty() && !call(spec, true)) return kExitFailure;
      // Bookkeeping after the step.
      std::uniform_int_distribution<int> accept(1, Ts_);
      for (Entry& e : mixed) {
        if (!e.r) continue;
        if (e.r->prefilled < e.r->prompt) e.r->prefilled += e.len;
        else e.r->generated += 1;
      }
      for (Entry& e : spec) {
        const int a = accept(rng_);  // drafts accepted + the verified token
        e.r->cur = a - 1;
        e.r->generated += a;
        accepted_ += a;
      }
      for (size_t i = 0; i < active_.size();) {
        if (active_[i].prefilled >= active_[i].prompt && active_[i].generated >= active_[i].gen) {
          free_.push_back(active_[i].group);
          active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(i));
          ++finished;
        } else {
          ++i;
        }
      }
    }
    // Final pools: every slot, written or not, must agree.
    if (o_.backend == LINATTN_BACKEND_CUDA) {
      std::string err;
      if (!dev_pool_.download(pool_.data(), pool_.size() * sizeof(float), &err)) {
        std::fprintf(stderr, "error: reading the device pool: %s\n", err.c_str());
        return kExitFailure;
      }
    }
    double d2 = 0, r2 = 0;
    for (size_t i = 0; i < pool_.size(); ++i) {
      const double d = double(pool_[i]) - ref_pool_[i];
      d2 += d * d;
      r2 += double(ref_pool_[i]) * ref_pool_[i];
    }
    const double pool_err = r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2);
    const double out_err = out_r2_ > 0 ? std::sqrt(out_d2_ / out_r2_) : std::sqrt(out_d2_);
    const bool ok = std::isfinite(out_err) && std::isfinite(pool_err) &&
                    out_err <= o_.tolerance && pool_err <= o_.tolerance;
    std::printf("requests: %lld arrived, %lld finished, %zu active, %zu waiting at the end\n",
                (long long)arrived, (long long)finished, active_.size(), waiting_.size());
    std::printf("check against the oracle (reference backend, same calls, own pool):\n");
    std::printf("  %-40s rel err %.3e  %s (tol %.0e)\n", "outputs of every call", out_err,
                out_err <= o_.tolerance ? "PASS" : "FAIL", o_.tolerance);
    std::printf("  %-40s rel err %.3e  %s (tol %.0e)\n", "final state pool (all slots)", pool_err,
                pool_err <= o_.tolerance ? "PASS" : "FAIL", o_.tolerance);
    std::printf("throughput (%s backend%s):\n", backend_name(o_.backend),
                o_.backend == LINATTN_BACKEND_CUDA ? ", each call synchronised, copies excluded" : "");
    auto line = [](const char* what, const Phase& p) {
      std::printf("  %-34s %6lld calls %9lld tokens %10.3f ms %14.1f tokens/s\n", what,
                  (long long)p.calls, (long long)p.tokens, p.secs * 1e3,
                  p.secs > 0 ? p.tokens / p.secs : 0.0);
    };
    line("prefill chunks (in mixed calls)", prefill_);
    line("decodes (in mixed calls)", decode_);
    line("mixed calls, all tokens", mixed_);
    if (o_.spec_len > 0) {
      line("speculative calls", spec_);
      std::printf("  %-34s %23lld accepted %10s %14.1f accepted tokens/s\n", "", (long long)accepted_,
                  "", spec_.secs > 0 ? accepted_ / spec_.secs : 0.0);
    }
    std::printf("RESULT: %s\n", ok ? "PASS" : "FAIL");
    return ok ? kExitOk : kExitFailure;
  }

 private:
  // Runs one serving call on the backend (timed) and on the oracle; compares the outputs.
  bool call(const std::vector<Entry>& entries, bool spec) {
    const int64_t N = static_cast<int64_t>(entries.size());
    std::vector<int32_t> cu{0}, slots, init, accepted;
    for (const Entry& e : entries) {
      cu.push_back(cu.back() + e.len);
      if (spec) {
        for (int t = 0; t < Ts_; ++t) slots.push_back(e.r ? e.r->group * Ts_ + t : -1);
        accepted.push_back(e.r ? e.r->cur + 1 : 1);
      } else {
        slots.push_back(e.r ? e.r->group * Ts_ + e.r->cur : -1);
        init.push_back(e.r && e.r->prefilled > 0 ? 1 : 0);
      }
    }
    const int64_t T = cu.back(), Hq = o_.q_heads, Hkv = o_.kv_heads;
    const int64_t Hout = std::max(Hq, Hkv);
    std::normal_distribution<float> n01;
    auto random = [&](int64_t n, float s) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = s * n01(rng_);
      return v;
    };
    std::vector<float> q = random(T * Hq * o_.dk, 1.f), k = random(T * Hq * o_.dk, 1.f);
    std::vector<float> v = random(T * Hkv * o_.dv, 1.f);
    std::vector<float> a = random(T * Hkv, 1.f), b = random(T * Hkv, 1.f);
    std::vector<float> out(static_cast<size_t>(T * Hout * o_.dv), NAN), ref = out;

    // Where the backend reads: the host vectors, or device copies of them on CUDA.
    const bool cuda = o_.backend == LINATTN_BACKEND_CUDA;
    const Memory mem = cuda ? LINATTN_MEMORY_CUDA : LINATTN_MEMORY_HOST;
    std::vector<DeviceBuffer> dev;
    dev.reserve(16);
    bool placed = true;
    auto place = [&](auto& v) -> void* {
      if (!cuda) return v.data();
      std::string err;
      dev.emplace_back();
      const size_t bytes = v.size() * sizeof(v[0]);
      if (!dev.back().allocate(bytes, &err) || !dev.back().upload(v.data(), bytes, &err)) {
        if (placed) std::fprintf(stderr, "error: device copy: %s\n", err.c_str());
        placed = false;
      }
      return dev.back().data();
    };
    // The call's arguments with every input, index and output tensor taken from `where(vector)`
    // in memory space `m`: device copies for the backend under test, the host vectors for the
    // oracle.
    auto bind = [&](auto&& where, Memory m, std::vector<float>& output) {
      auto tensor = [&](auto& v, DType dt, std::initializer_list<int64_t> shape) {
        return make_tensor(where(v), dt, shape, m);
      };
      LinearAttentionArgs args = default_linear_attention_args();
      args.q_num_heads = static_cast<int32_t>(Hq);
      args.kv_num_heads = static_cast<int32_t>(Hkv);
      args.update_rule = LINATTN_RULE_GATED_DELTA;
      args.query = tensor(q, LINATTN_FLOAT32, {1, T, Hq * o_.dk});
      args.key = tensor(k, LINATTN_FLOAT32, {1, T, Hq * o_.dk});
      args.value = tensor(v, LINATTN_FLOAT32, {1, T, Hkv * o_.dv});
      args.decay = tensor(a, LINATTN_FLOAT32, {1, T, Hkv});
      args.beta = tensor(b, LINATTN_FLOAT32, {1, T, Hkv});
      ServingArgs& s = args.serving;
      s.cu_seqlens = tensor(cu, LINATTN_INT32, {N + 1});
      if (spec) {
        s.state_indices = tensor(slots, LINATTN_INT32, {N, Ts_});
        s.num_accepted_tokens = tensor(accepted, LINATTN_INT32, {N});
      } else {
        s.state_indices = tensor(slots, LINATTN_INT32, {N});
        s.has_initial_state = tensor(init, LINATTN_INT32, {N});
      }
      s.qk_l2norm = 1;
      s.fused_gating = 1;
      s.A_log = tensor(A_log_, LINATTN_FLOAT32, {Hkv});
      s.dt_bias = tensor(dt_bias_, LINATTN_FLOAT32, {Hkv});
      args.output = tensor(output, LINATTN_FLOAT32, {1, T, Hout * o_.dv});
      return args;
    };
    const std::initializer_list<int64_t> pool_shape{slots_, Hkv, o_.dk, o_.dv};
    LinearAttentionArgs args = bind(place, mem, out);
    const DeviceBuffer* out_dev = cuda ? &dev.back() : nullptr;  // output is placed last
    if (cuda) args.serving.error_flag = make_tensor(dev_flag_.data(), LINATTN_INT32, {1}, mem);
    args.present_state = make_tensor(cuda ? dev_pool_.data() : pool_.data(), LINATTN_FLOAT32,
                                     pool_shape, mem);
    if (!placed) return false;
    std::string err;
    const auto t0 = std::chrono::steady_clock::now();
    Status st = linear_attention(ctx_, args);
    if (st.ok() && cuda && !device_synchronize(&err)) st = Status(LINATTN_ERROR_DEVICE, err);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok()) {
      std::fprintf(stderr, "error: serving call: %s\n", st.to_string().c_str());
      return false;
    }
    if (cuda) {
      int32_t flag = -1;
      if (!out_dev->download(out.data(), out.size() * sizeof(float), &err) ||
          !dev_flag_.download(&flag, sizeof flag, &err)) {
        std::fprintf(stderr, "error: reading the call's results: %s\n", err.c_str());
        return false;
      }
      if (flag != 0) {
        std::fprintf(stderr, "error: serving call: error_flag = %d (sequence %d broke an index "
                             "rule)\n", flag, flag - 1);
        return false;
      }
    }
    // The oracle reads the host copies of the same inputs.
    args = bind([](auto& vec) -> void* { return vec.data(); }, LINATTN_MEMORY_HOST, ref);
    args.present_state = make_tensor(ref_pool_.data(), LINATTN_FLOAT32, pool_shape);
    st = linear_attention(oracle_, args);
    if (!st.ok()) {
      std::fprintf(stderr, "error: oracle serving call: %s\n", st.to_string().c_str());
      return false;
    }
    for (size_t i = 0; i < out.size(); ++i) {
      const double d = double(out[i]) - ref[i];
      out_d2_ += std::isfinite(d) ? d * d : INFINITY;
      out_r2_ += double(ref[i]) * ref[i];
    }
    Phase& ph = spec ? spec_ : mixed_;
    ph.secs += secs;
    ph.tokens += T;
    ph.calls += 1;
    if (!spec) {
      // Attribute the mixed call's time to prefill and decode tokens in proportion.
      int64_t pre = 0, dec = 0;
      for (const Entry& e : entries)
        if (e.r) (e.r->prefilled < e.r->prompt ? pre : dec) += e.len;
      const double per = T > 0 ? secs / T : 0;
      prefill_.tokens += pre, prefill_.secs += per * pre, prefill_.calls += pre > 0;
      decode_.tokens += dec, decode_.secs += per * dec, decode_.calls += dec > 0;
    }
    return true;
  }

  const ServingScenarioOptions& o_;
  Context& ctx_;
  Context& oracle_;
  std::mt19937_64 rng_;
  int Ts_ = 1;
  int64_t slots_ = 0, block_ = 0, accepted_ = 0;
  std::vector<float> pool_, ref_pool_, A_log_, dt_bias_;
  DeviceBuffer dev_pool_, dev_flag_;  // CUDA backend only
  std::deque<Request> waiting_;
  std::vector<Request> active_;
  std::vector<int> free_;
  Phase prefill_, decode_, mixed_, spec_;
  double out_d2_ = 0, out_r2_ = 0;
};

}  // namespace

int run_serving_scenario(const ServingScenarioOptions& o) {
  if (!(o.arrival_rate > 0) || !std::isfinite(o.arrival_rate)) {
    std::fprintf(stderr, "error: --arrival-rate must be a positive number\n");
    return kExitUsage;
  }
  if (o.kv_heads % o.q_heads != 0) {
    std::fprintf(stderr, "error: --scenario serving uses n_k = H_q key heads and needs H_kv "
                         "(%d) to be a multiple of H_q (%d)\n", o.kv_heads, o.q_heads);
    return kExitUsage;
  }
  std::printf("linattn run --scenario serving: %s, H_q=n_k=%d H_kv=%d d_k=%d d_v=%d, gated_delta "
              "with in-call q/k L2 norm and gating, pool %d sequences x %d slots, %d steps, "
              "arrivals %.2f/step, prompts %d..%d, generation %d..%d, prefill chunk %d, "
              "speculative %d\n",
              backend_name(o.backend), o.q_heads, o.kv_heads, o.dk,
              o.dv, o.pool_seqs, o.spec_len + 1, o.steps, o.arrival_rate, o.prompt_min,
              o.prompt_max, o.gen_min, o.gen_max, o.prefill_chunk, o.spec_len);
  Context ctx, oracle;
  if (!open_context(o.backend, o.threads, &ctx) ||
      !open_context(LINATTN_BACKEND_REFERENCE, 0, &oracle))
    return kExitFailure;
  Simulation sim(o, ctx, oracle);
  if (!sim.init_device()) return kExitFailure;
  return sim.run();
}

}  // namespace linattn::tool
