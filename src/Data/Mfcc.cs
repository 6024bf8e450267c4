using MathNet.Numerics.IntegralTransforms;

namespace ZeroFL.Data;

/// <summary>
/// Parameters of <see cref="Mfcc"/>. The defaults turn a 1 s, 16 kHz clip into a 32x32 matrix
/// (32 coefficients by 32 frames).
/// </summary>
/// <param name="SampleRate">Sample rate of the input, Hz.</param>
/// <param name="ClipLength">Samples per clip: shorter input is padded with zeros at the end, longer input is cut.</param>
/// <param name="FrameLength">Samples per analysis frame (640 = 40 ms).</param>
/// <param name="HopLength">Samples between frame starts.</param>
/// <param name="FrameCount">Frames per clip: frame t covers samples [t*HopLength, t*HopLength+FrameLength).</param>
/// <param name="FftSize">FFT length; each windowed frame is padded with zeros to it.</param>
/// <param name="MelFilterCount">Number of triangular mel filters.</param>
/// <param name="LowFrequency">Lower edge of the first mel filter, Hz.</param>
/// <param name="HighFrequency">Upper edge of the last mel filter, Hz (at most SampleRate/2).</param>
/// <param name="CoefficientCount">Cepstral coefficients kept: 0..CoefficientCount-1 (at most MelFilterCount).</param>
/// <param name="LogFloor">Added to each mel energy before the natural log.</param>
public sealed record MfccOptions(
    int SampleRate = 16000,
    int ClipLength = 16000,
    int FrameLength = 640,
    int HopLength = 480,
    int FrameCount = 32,
    int FftSize = 1024,
    int MelFilterCount = 40,
    double LowFrequency = 20,
    double HighFrequency = 8000,
    int CoefficientCount = 32,
    double LogFloor = 1e-6)
{
    /// <summary>The default parameters (32 coefficients x 32 frames of a 1 s 16 kHz clip).</summary>
    public static MfccOptions Default { get; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> when the parameters are inconsistent.</summary>
    public void Validate()
    {
        if (SampleRate <= 0 || ClipLength <= 0 || FrameLength <= 0 || HopLength <= 0 || FrameCount <= 0
            || MelFilterCount <= 0 || CoefficientCount <= 0)
        {
            throw new ArgumentException($"MFCC sizes must be positive: {this}");
        }
        if (FftSize < FrameLength || FftSize % 2 != 0)
        {
            throw new ArgumentException($"FFT size {FftSize} must be even and at least the frame length {FrameLength}");
        }
        if (!(LowFrequency >= 0 && LowFrequency < HighFrequency && HighFrequency <= SampleRate / 2.0))
        {
            throw new ArgumentException(
                $"mel range {LowFrequency}..{HighFrequency} Hz must satisfy 0 <= low < high <= {SampleRate / 2.0} (Nyquist)");
        }
        if (CoefficientCount > MelFilterCount)
        {
            throw new ArgumentException($"{CoefficientCount} coefficients cannot come from {MelFilterCount} mel filters");
        }
        if (!(LogFloor > 0))
        {
            throw new ArgumentException($"log floor {LogFloor} must be positive");
        }
    }
}

/// <summary>
/// Mel-frequency cepstral coefficients, computed exactly as follows (defaults in brackets):
/// <list type="number">
/// <item>The clip is padded with zeros at the end or cut to <c>ClipLength</c> [16000] samples.</item>
/// <item>Frame t (t = 0..FrameCount-1 [31]) is samples <c>[t*HopLength, t*HopLength + FrameLength)</c>
/// [start 0, 480, ..., 14880; 640 samples]; a sample index at or past <c>ClipLength</c> reads as zero.
/// With the defaults the last frame ends at 15520, so no padding happens and the final 480 samples
/// fall in no frame.</item>
/// <item>Each frame is multiplied by the periodic Hann window <c>w[n] = 0.5 - 0.5 cos(2 pi n / FrameLength)</c>,
/// padded with zeros to <c>FftSize</c> [1024] and transformed with MathNet's FFT (no scaling).</item>
/// <item>Power spectrum <c>P[k] = |X[k]|^2</c> for bins k = 0..FftSize/2, bin k at frequency <c>k * SampleRate / FftSize</c>.</item>
/// <item><c>MelFilterCount</c> [40] triangular filters on the HTK mel scale <c>mel(f) = 2595 log10(1 + f/700)</c>:
/// MelFilterCount+2 points equally spaced in mel from <c>LowFrequency</c> [20 Hz] to <c>HighFrequency</c> [8000 Hz];
/// filter m rises linearly (in Hz) from point m to 1 at point m+1 and falls to 0 at point m+2, evaluated at
/// each bin's exact frequency (no rounding to bins, no area normalisation). Energy <c>E[m] = sum_k weight[m,k] P[k]</c>.</item>
/// <item><c>L[m] = ln(E[m] + LogFloor)</c> [1e-6].</item>
/// <item>Orthonormal DCT-II: <c>c[j] = s[j] sum_m L[m] cos(pi j (m + 0.5) / M)</c>, <c>s[0] = sqrt(1/M)</c>,
/// <c>s[j] = sqrt(2/M)</c>, M = MelFilterCount; coefficients j = 0..CoefficientCount-1 [31] are kept.</item>
/// </list>
/// The output is <c>[CoefficientCount, FrameCount]</c> row-major: coefficient j of frame t at <c>j * FrameCount + t</c>.
/// Silence therefore gives row 0 equal to <c>sqrt(M) ln(LogFloor)</c> and every other row 0.
/// Instances are immutable and safe to use from several threads at once.
/// </summary>
public sealed class Mfcc
{
    private readonly double[] window;
    private readonly int[] filterFirstBin;
    private readonly double[][] filterWeights;
    private readonly double[] dct; // [CoefficientCount, MelFilterCount]

    /// <summary>Prepares the window, filter bank and DCT for <paramref name="options"/> (the defaults when null).</summary>
    public Mfcc(MfccOptions? options = null)
    {
        Options = options ?? MfccOptions.Default;
        Options.Validate();
        var o = Options;
        window = new double[o.FrameLength];
        for (int n = 0; n < o.FrameLength; n++)
        {
            window[n] = 0.5 - 0.5 * Math.Cos(2 * Math.PI * n / o.FrameLength);
        }

        int bins = o.FftSize / 2 + 1;
        filterFirstBin = new int[o.MelFilterCount];
        filterWeights = new double[o.MelFilterCount][];
        for (int m = 0; m < o.MelFilterCount; m++)
        {
            var (lower, center, upper) = FilterEdges(m);
            int first = -1;
            var weights = new List<double>();
            for (int k = 0; k < bins; k++)
            {
                double w = TriangleWeight((double)k * o.SampleRate / o.FftSize, lower, center, upper);
                if (w > 0)
                {
                    if (first < 0)
                    {
                        first = k;
                    }
                    weights.Add(w);
                }
                else if (first >= 0)
                {
                    break;
                }
            }
            filterFirstBin[m] = Math.Max(first, 0);
            filterWeights[m] = [.. weights];
        }

        int mels = o.MelFilterCount;
        dct = new double[o.CoefficientCount * mels];
        for (int j = 0; j < o.CoefficientCount; j++)
        {
            double scale = Math.Sqrt((j == 0 ? 1.0 : 2.0) / mels);
            for (int m = 0; m < mels; m++)
            {
                dct[j * mels + m] = scale * Math.Cos(Math.PI * j * (m + 0.5) / mels);
            }
        }
    }

    /// <summary>The parameters in use.</summary>
    public MfccOptions Options { get; }

    /// <summary>Values per output matrix: <c>CoefficientCount * FrameCount</c> (1024 by default).</summary>
    public int OutputLength => Options.CoefficientCount * Options.FrameCount;

    /// <summary>The HTK mel scale: <c>2595 log10(1 + hz / 700)</c>.</summary>
    public static double HzToMel(double hz) => 2595.0 * Math.Log10(1.0 + hz / 700.0);

    /// <summary>The inverse of <see cref="HzToMel"/>: <c>700 (10^(mel / 2595) - 1)</c>.</summary>
    public static double MelToHz(double mel) => 700.0 * (Math.Pow(10.0, mel / 2595.0) - 1.0);

    /// <summary>Lower edge, peak and upper edge (Hz) of mel filter <paramref name="filter"/>.</summary>
    public (double Lower, double Center, double Upper) FilterEdges(int filter)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(filter);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(filter, Options.MelFilterCount);
        double low = HzToMel(Options.LowFrequency);
        double step = (HzToMel(Options.HighFrequency) - low) / (Options.MelFilterCount + 1);
        return (MelToHz(low + filter * step), MelToHz(low + (filter + 1) * step), MelToHz(low + (filter + 2) * step));
    }

    /// <summary>
    /// The MFCC matrix of <paramref name="clip"/>: <c>[CoefficientCount, FrameCount]</c> row-major
    /// (see the class summary for every step).
    /// </summary>
    public float[] Compute(ReadOnlySpan<float> clip)
    {
        var output = new float[OutputLength];
        Compute(clip, output);
        return output;
    }

    /// <summary>Writes the MFCC matrix of <paramref name="clip"/> into <paramref name="output"/> (length <see cref="OutputLength"/>).</summary>
    public void Compute(ReadOnlySpan<float> clip, Span<float> output)
    {
        if (output.Length != OutputLength)
        {
            throw new ArgumentException($"output holds {output.Length} values, not {OutputLength}", nameof(output));
        }
        var o = Options;
        var logMel = new double[o.MelFilterCount];
        var energies = new double[o.MelFilterCount * o.FrameCount];
        MelEnergies(clip, energies);
        for (int t = 0; t < o.FrameCount; t++)
        {
            for (int m = 0; m < o.MelFilterCount; m++)
            {
                logMel[m] = Math.Log(energies[m * o.FrameCount + t] + o.LogFloor);
            }
            for (int j = 0; j < o.CoefficientCount; j++)
            {
                double sum = 0;
                var row = dct.AsSpan(j * o.MelFilterCount, o.MelFilterCount);
                for (int m = 0; m < row.Length; m++)
                {
                    sum += row[m] * logMel[m];
                }
                output[j * o.FrameCount + t] = (float)sum;
            }
        }
    }

    /// <summary>
    /// The mel filter energies before the log: <c>[MelFilterCount, FrameCount]</c> row-major
    /// (filter m of frame t at <c>m * FrameCount + t</c>).
    /// </summary>
    public double[] MelEnergies(ReadOnlySpan<float> clip)
    {
        var energies = new double[Options.MelFilterCount * Options.FrameCount];
        MelEnergies(clip, energies);
        return energies;
    }

    private void MelEnergies(ReadOnlySpan<float> clip, Span<double> energies)
    {
        var o = Options;
        int usable = Math.Min(clip.Length, o.ClipLength);
        // ForwardReal packs the real input into the first FftSize values and returns bins 0..FftSize/2 interleaved.
        var buffer = new double[o.FftSize + 2];
        var power = new double[o.FftSize / 2 + 1];
        for (int t = 0; t < o.FrameCount; t++)
        {
            Array.Clear(buffer);
            int start = t * o.HopLength;
            int end = Math.Min(start + o.FrameLength, usable);
            for (int i = start; i < end; i++)
            {
                buffer[i - start] = clip[i] * window[i - start];
            }
            Fourier.ForwardReal(buffer, o.FftSize, FourierOptions.Matlab);
            for (int k = 0; k < power.Length; k++)
            {
                double re = buffer[2 * k], im = buffer[2 * k + 1];
                power[k] = re * re + im * im;
            }
            for (int m = 0; m < o.MelFilterCount; m++)
            {
                var weights = filterWeights[m];
                int first = filterFirstBin[m];
                double sum = 0;
                for (int i = 0; i < weights.Length; i++)
                {
                    sum += weights[i] * power[first + i];
                }
                energies[m * o.FrameCount + t] = sum;
            }
        }
    }

    private static double TriangleWeight(double f, double lower, double center, double upper)
    {
        if (f <= lower || f >= upper)
        {
            return 0;
        }
        return f <= center ? (f - lower) / (center - lower) : (upper - f) / (upper - center);
    }
}
