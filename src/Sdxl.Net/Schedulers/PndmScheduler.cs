using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Pseudo numerical methods for diffusion models (Liu et al., 2022), as diffusers' <c>PNDMScheduler</c>:
/// linear multistep (PLMS) steps, optionally started by Runge–Kutta (PRK) steps.
/// </summary>
/// <remarks>
/// With <c>skip_prk_steps</c> (as SDXL configures it) the schedule visits its second timestep twice, the first
/// step being completed by a second-order correction. Without it, three fourth-order Runge–Kutta steps (12 model
/// evaluations) start the run. Honours <c>set_alpha_to_one</c>, <c>steps_offset</c>, <c>timestep_spacing</c>,
/// <c>prediction_type</c> (<c>epsilon</c> or <c>v_prediction</c>) and the beta schedule options.
/// </remarks>
public sealed class PndmScheduler : IScheduler
{
    private const int PndmOrder = 4;

    private readonly float[] _alphasCumprod;
    private readonly float _finalAlphaCumprod;
    private readonly PredictionType _predictionType;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly bool _skipPrkSteps;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public PndmScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config));
        _finalAlphaCumprod = config.GetBoolean("set_alpha_to_one", false) ? 1f : _alphasCumprod[0];
        _predictionType = NoiseSchedule.ParsePredictionType(config);
        if (_predictionType == PredictionType.Sample)
        {
            throw new NotSupportedException("PNDMScheduler supports prediction_type 'epsilon' and 'v_prediction'.");
        }

        _spacing = NoiseSchedule.ParseTimestepSpacing(config, "leading");
        _stepsOffset = config.GetInt32("steps_offset", 0);
        _skipPrkSteps = config.GetBoolean("skip_prk_steps", false);
    }

    /// <inheritdoc />
    public string Name => "pndm";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        int trainSteps = _alphasCumprod.Length;
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, trainSteps);
        var ascending = AscendingTimesteps(trainSteps, inferenceSteps);
        int stepRatio = trainSteps / inferenceSteps;
        long[] prk;
        long[] plms;
        if (_skipPrkSteps)
        {
            // concat([ts[:-1], ts[-2:-1], ts[-1:]])[::-1]: the second timestep is visited twice (once for a single step).
            prk = [];
            var repeated = new List<long>(ascending.Length + 1);
            repeated.AddRange(ascending.AsSpan(0, ascending.Length - 1));
            if (ascending.Length >= 2)
            {
                repeated.Add(ascending[^2]);
            }

            repeated.Add(ascending[^1]);
            repeated.Reverse();
            plms = [.. repeated];
        }
        else
        {
            if (ascending.Length < PndmOrder)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(inferenceSteps), inferenceSteps, $"PNDMScheduler needs at least {PndmOrder} steps when skip_prk_steps is false.");
            }

            // ts[-4:].repeat(2) + tile([0, ratio // 2], 4), then [:-1].repeat(2)[1:-1], reversed.
            var last = new long[2 * PndmOrder];
            for (int i = 0; i < last.Length; i++)
            {
                last[i] = ascending[ascending.Length - PndmOrder + (i / 2)] + (i % 2 == 0 ? 0 : stepRatio / 2);
            }

            prk = new long[(2 * (last.Length - 1)) - 2];
            for (int i = 0; i < prk.Length; i++)
            {
                prk[i] = last[(i + 1) / 2];
            }

            Array.Reverse(prk);
            plms = ascending[..^3];
            Array.Reverse(plms);
        }

        var timesteps = new float[prk.Length + plms.Length];
        for (int i = 0; i < prk.Length; i++)
        {
            timesteps[i] = prk[i];
        }

        for (int i = 0; i < plms.Length; i++)
        {
            timesteps[prk.Length + i] = plms[i];
        }

        return new Run(this, timesteps, prk, stepRatio);
    }

    private long[] AscendingTimesteps(int trainSteps, int inferenceSteps)
    {
        var result = new long[inferenceSteps];
        switch (_spacing)
        {
            case TimestepSpacing.Linspace:
            {
                var ramp = NoiseSchedule.NumpyLinspace(0, trainSteps - 1, inferenceSteps);
                for (int i = 0; i < inferenceSteps; i++)
                {
                    result[i] = (long)Math.Round(ramp[i], MidpointRounding.ToEven);
                }

                return result;
            }

            case TimestepSpacing.Leading:
                for (int i = 0; i < inferenceSteps; i++)
                {
                    result[i] = ((long)i * (trainSteps / inferenceSteps)) + _stepsOffset;
                }

                return result;

            default:
            {
                // np.round(np.arange(T, 0, -T / N))[::-1] - 1
                var trailing = NoiseSchedule.TrailingTimesteps(trainSteps, inferenceSteps);
                result = new long[trailing.Length];
                for (int i = 0; i < trailing.Length; i++)
                {
                    result[i] = (long)trailing[trailing.Length - 1 - i];
                }

                return result;
            }
        }
    }

    private sealed class Run(PndmScheduler owner, float[] timesteps, long[] prkTimesteps, int stepRatio)
        : AlphaSchedulerRun(timesteps, owner._alphasCumprod)
    {
        // The last four model outputs (ets), newest at _newest, and the sample and Runge–Kutta sum carried between
        // evaluations of one step; allocated on the first step.
        private float[][]? _ets;
        private float[] _currentSample = [];
        private float[] _accumulated = [];
        private int _newest = -1;
        private int _etsCount;
        private int _counter;
        private bool _hasCurrentSample;

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            SigmaSchedulerRun.CheckLengthsCore(sample.Length, modelOutput.Length, nameof(modelOutput));
            int t = TrainIndex(timestep);
            if (_ets is null || _ets[0].Length != sample.Length)
            {
                _ets = new float[PndmOrder][];
                for (int i = 0; i < PndmOrder; i++)
                {
                    _ets[i] = new float[sample.Length];
                }

                _currentSample = new float[sample.Length];
                _accumulated = prkTimesteps.Length > 0 ? new float[sample.Length] : [];
            }

            if (_counter < prkTimesteps.Length)
            {
                StepPrk(modelOutput, t, sample);
            }
            else
            {
                StepPlms(modelOutput, t, sample);
            }

            _counter++;
            _index.Advance();
        }

        private void StepPrk(ReadOnlySpan<float> modelOutput, int t, Span<float> sample)
        {
            int half = stepRatio / 2;
            int previous = t - (_counter % 2 == 1 ? 0 : half);
            int current = (int)prkTimesteps[_counter / 4 * 4];
            var accumulated = _accumulated.AsSpan();
            var currentSample = _currentSample.AsSpan();
            var combined = Scratch(sample.Length, 2);
            switch (_counter % 4)
            {
                case 0:
                    // Runge–Kutta weights 1/6, 1/3, 1/3, 1/6 (float32, as torch multiplies by the Python constants).
                    TensorPrimitives.Multiply(modelOutput, 1f / 6f, accumulated);
                    Push(modelOutput);
                    sample.CopyTo(currentSample);
                    _hasCurrentSample = true;
                    modelOutput.CopyTo(combined);
                    break;
                case 1:
                case 2:
                    TensorPrimitives.MultiplyAdd(modelOutput, 1f / 3f, accumulated, accumulated);
                    modelOutput.CopyTo(combined);
                    break;
                default:
                    TensorPrimitives.MultiplyAdd(modelOutput, 1f / 6f, accumulated, combined);
                    accumulated.Clear();
                    break;
            }

            PreviousSample(_hasCurrentSample ? currentSample : sample, current, previous, combined, sample);
        }

        private void StepPlms(ReadOnlySpan<float> modelOutput, int t, Span<float> sample)
        {
            if (!owner._skipPrkSteps && _etsCount < 3)
            {
                throw new InvalidOperationException("PNDM needs three Runge-Kutta steps before its linear multistep steps.");
            }

            int current = t;
            int previous = t - stepRatio;
            if (_counter != 1)
            {
                Push(modelOutput);
            }
            else
            {
                // The repeated second timestep completes the first step from the saved sample.
                previous = t;
                current = t + stepRatio;
            }

            var combined = Scratch(sample.Length, 2);
            var currentSample = _currentSample.AsSpan();
            var e1 = Et(1);
            if (_etsCount == 1 && _counter == 0)
            {
                modelOutput.CopyTo(combined);
                sample.CopyTo(currentSample);
                _hasCurrentSample = true;
                PreviousSample(sample, current, previous, combined, sample);
            }
            else if (_etsCount == 1 && _counter == 1)
            {
                // (e + e₁) / 2 from the saved sample.
                TensorPrimitives.Add(modelOutput, e1, combined);
                TensorPrimitives.Divide(combined, 2f, combined);
                _hasCurrentSample = false;
                PreviousSample(currentSample, current, previous, combined, sample);
            }
            else
            {
                if (_etsCount == 2)
                {
                    // (3e₁ − e₂) / 2
                    TensorPrimitives.Multiply(e1, 3f, combined);
                    TensorPrimitives.Subtract(combined, Et(2), combined);
                    TensorPrimitives.Divide(combined, 2f, combined);
                }
                else if (_etsCount == 3)
                {
                    // (23e₁ − 16e₂ + 5e₃) / 12
                    var term = Scratch(sample.Length, 1);
                    TensorPrimitives.Multiply(e1, 23f, combined);
                    TensorPrimitives.Multiply(Et(2), 16f, term);
                    TensorPrimitives.Subtract(combined, term, combined);
                    TensorPrimitives.Multiply(Et(3), 5f, term);
                    TensorPrimitives.Add(combined, term, combined);
                    TensorPrimitives.Divide(combined, 12f, combined);
                }
                else
                {
                    // (1/24)(55e₁ − 59e₂ + 37e₃ − 9e₄)
                    var term = Scratch(sample.Length, 1);
                    TensorPrimitives.Multiply(e1, 55f, combined);
                    TensorPrimitives.Multiply(Et(2), 59f, term);
                    TensorPrimitives.Subtract(combined, term, combined);
                    TensorPrimitives.Multiply(Et(3), 37f, term);
                    TensorPrimitives.Add(combined, term, combined);
                    TensorPrimitives.Multiply(Et(4), 9f, term);
                    TensorPrimitives.Subtract(combined, term, combined);
                    TensorPrimitives.Multiply(combined, 1f / 24f, combined);
                }

                PreviousSample(sample, current, previous, combined, sample);
            }
        }

        /// <summary>The <paramref name="back"/>-th most recent stored model output (1 = newest).</summary>
        private Span<float> Et(int back) => _ets![(_newest - back + 1 + PndmOrder) % PndmOrder];

        private void Push(ReadOnlySpan<float> modelOutput)
        {
            _newest = (_newest + 1) % PndmOrder;
            _etsCount = Math.Min(_etsCount + 1, PndmOrder);
            modelOutput.CopyTo(_ets![_newest]);
        }

        /// <summary>
        /// Formula (9) of the PNDM paper: x_prev = √(ᾱ_prev/ᾱ)·x − (ᾱ_prev − ᾱ)·e / (ᾱ·√(1 − ᾱ_prev) + √(ᾱ(1 − ᾱ)ᾱ_prev)).
        /// <paramref name="modelOutput"/> is overwritten when it must be converted from a v-prediction.
        /// </summary>
        private void PreviousSample(ReadOnlySpan<float> sample, int t, int previous, Span<float> modelOutput, Span<float> destination)
        {
            float alphaProd = _alphasCumprod[t];
            float alphaProdPrev = previous >= 0 ? _alphasCumprod[previous] : owner._finalAlphaCumprod;
            float betaProd = 1f - alphaProd;
            float betaProdPrev = 1f - alphaProdPrev;
            if (owner._predictionType == PredictionType.VPrediction)
            {
                var scaled = Scratch(sample.Length, 1);
                TensorPrimitives.Multiply(sample, MathF.Sqrt(betaProd), scaled);
                TensorPrimitives.MultiplyAdd(modelOutput, MathF.Sqrt(alphaProd), scaled, modelOutput);
            }

            float sampleCoefficient = MathF.Sqrt(alphaProdPrev / alphaProd);
            float denominator = (alphaProd * MathF.Sqrt(betaProdPrev)) + MathF.Sqrt(alphaProd * betaProd * alphaProdPrev);
            TensorPrimitives.Multiply(modelOutput, alphaProdPrev - alphaProd, modelOutput);
            TensorPrimitives.Divide(modelOutput, denominator, modelOutput);
            TensorPrimitives.Multiply(sample, sampleCoefficient, destination);
            TensorPrimitives.Subtract(destination, modelOutput, destination);
        }
    }
}
