using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;

namespace CustomScheduler;

/// <summary>
/// A first-order Euler sampler over "trailing" timesteps (they start at the last training step, so the first step
/// sees pure noise), written against the public <see cref="IScheduler"/> contract only. It reads the beta schedule
/// from the model's scheduler_config.json and supports epsilon-prediction models with a scaled-linear schedule.
/// </summary>
public sealed class TrailingEulerScheduler : IScheduler
{
    private readonly float[] _trainSigmas;

    /// <summary>Creates the sampler from a model's scheduler configuration.</summary>
    public TrailingEulerScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.GetString("prediction_type", "epsilon") != "epsilon" || config.GetString("beta_schedule", "scaled_linear") != "scaled_linear")
        {
            throw new NotSupportedException("TrailingEulerScheduler supports epsilon prediction with a scaled_linear beta schedule.");
        }

        int trainSteps = config.GetInt32("num_train_timesteps", 1000);
        double start = Math.Sqrt(config.GetDouble("beta_start", 0.00085)), end = Math.Sqrt(config.GetDouble("beta_end", 0.012));
        _trainSigmas = new float[trainSteps];
        double alphaCumprod = 1;
        for (int t = 0; t < trainSteps; t++)
        {
            double sqrtBeta = start + ((end - start) * t / (trainSteps - 1));
            alphaCumprod *= 1 - (sqrtBeta * sqrtBeta);
            _trainSigmas[t] = (float)Math.Sqrt((1 - alphaCumprod) / alphaCumprod);
        }
    }

    /// <inheritdoc />
    public string Name => "trailing-euler";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        if (inferenceSteps < 1 || inferenceSteps > _trainSigmas.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(inferenceSteps), inferenceSteps, $"Steps must be between 1 and {_trainSigmas.Length}.");
        }

        return new Run(_trainSigmas, inferenceSteps);
    }

    private sealed class Run : ISchedulerRun
    {
        private readonly float[] _timesteps;
        private readonly float[] _sigmas;
        private int _stepIndex;

        public Run(float[] trainSigmas, int steps)
        {
            int trainSteps = trainSigmas.Length;
            _timesteps = new float[steps];
            _sigmas = new float[steps + 1];
            for (int i = 0; i < steps; i++)
            {
                // diffusers' "trailing": round(arange(T, 0, -T / N)) - 1.
                int t = (int)Math.Round(trainSteps - (i * (double)trainSteps / steps)) - 1;
                _timesteps[i] = t;
                _sigmas[i] = trainSigmas[t];
            }

            InitNoiseSigma = MathF.Sqrt((_sigmas[0] * _sigmas[0]) + 1);
        }

        public IReadOnlyList<float> Timesteps => _timesteps;

        public IReadOnlyList<float>? Sigmas => _sigmas;

        public float InitNoiseSigma { get; }

        public int Order => 1;

        public void SetBeginIndex(int beginIndex) => _stepIndex = beginIndex;

        public void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
        {
            float sigma = _sigmas[IndexOf(timestep)];
            float scale = 1 / MathF.Sqrt((sigma * sigma) + 1);
            for (int i = 0; i < sample.Length; i++)
            {
                destination[i] = sample[i] * scale;
            }
        }

        public void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            // x0 = x − σ·ε, so the ODE derivative (x − x0) / σ is ε itself: x ← x + ε·(σ_next − σ).
            float dt = _sigmas[_stepIndex + 1] - _sigmas[_stepIndex];
            for (int i = 0; i < sample.Length; i++)
            {
                sample[i] += modelOutput[i] * dt;
            }

            _stepIndex++;
        }

        public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination)
        {
            float sigma = _sigmas[IndexOf(timestep)];
            for (int i = 0; i < original.Length; i++)
            {
                destination[i] = original[i] + (noise[i] * sigma);
            }
        }

        private int IndexOf(float timestep)
        {
            int index = Array.IndexOf(_timesteps, timestep);
            return index >= 0 ? index : throw new ArgumentException($"Timestep {timestep} is not in this schedule.", nameof(timestep));
        }
    }
}
