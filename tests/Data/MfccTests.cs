using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class MfccTests
{
    /// <summary>
    /// An independent, slow MFCC: direct DFT sums and explicit loops, written from the documented
    /// recipe without sharing code with <see cref="Mfcc"/>. Returns [32 coefficients, 32 frames].
    /// </summary>
    private static double[,] SlowMfcc(float[] clip)
    {
        const int sampleRate = 16000, clipLength = 16000, frameLength = 640, hop = 480, frames = 32;
        const int fft = 1024, filters = 40, coefficients = 32;
        var x = new double[clipLength];
        for (int i = 0; i < Math.Min(clip.Length, clipLength); i++)
        {
            x[i] = clip[i];
        }
        // Mel points: 42 equally spaced between mel(20) and mel(8000).
        double Mel(double f) => 2595 * Math.Log10(1 + f / 700);
        double Hz(double m) => 700 * (Math.Pow(10, m / 2595) - 1);
        var points = new double[filters + 2];
        for (int i = 0; i < points.Length; i++)
        {
            points[i] = Hz(Mel(20) + i * (Mel(8000) - Mel(20)) / (filters + 1));
        }
        var result = new double[coefficients, frames];
        for (int t = 0; t < frames; t++)
        {
            var frame = new double[frameLength];
            for (int n = 0; n < frameLength; n++)
            {
                int index = t * hop + n;
                double sample = index < clipLength ? x[index] : 0;
                frame[n] = sample * (0.5 - 0.5 * Math.Cos(2 * Math.PI * n / frameLength));
            }
            var power = new double[fft / 2 + 1];
            for (int k = 0; k <= fft / 2; k++)
            {
                double re = 0, im = 0;
                for (int n = 0; n < frameLength; n++) // the zero padding to 1024 adds nothing
                {
                    double angle = -2 * Math.PI * k * n / fft;
                    re += frame[n] * Math.Cos(angle);
                    im += frame[n] * Math.Sin(angle);
                }
                power[k] = re * re + im * im;
            }
            var logMel = new double[filters];
            for (int m = 0; m < filters; m++)
            {
                double energy = 0;
                for (int k = 0; k <= fft / 2; k++)
                {
                    double f = k * (double)sampleRate / fft;
                    double lo = points[m], mid = points[m + 1], hi = points[m + 2];
                    double w = 0;
                    if (f > lo && f <= mid)
                    {
                        w = (f - lo) / (mid - lo);
                    }
                    else if (f > mid && f < hi)
                    {
                        w = (hi - f) / (hi - mid);
                    }
                    energy += w * power[k];
                }
                logMel[m] = Math.Log(energy + 1e-6);
            }
            for (int j = 0; j < coefficients; j++)
            {
                double sum = 0;
                for (int m = 0; m < filters; m++)
                {
                    sum += logMel[m] * Math.Cos(Math.PI * j * (m + 0.5) / filters);
                }
                result[j, t] = sum * (j == 0 ? Math.Sqrt(1.0 / filters) : Math.Sqrt(2.0 / filters));
            }
        }
        return result;
    }

    private static float[] Tone(int length, params (double Frequency, double Amplitude)[] parts)
    {
        var clip = new float[length];
        for (int i = 0; i < length; i++)
        {
            double v = 0;
            foreach (var (f, a) in parts)
            {
                v += a * Math.Sin(2 * Math.PI * f * i / 16000 + 0.3);
            }
            clip[i] = (float)v;
        }
        return clip;
    }

    private static void AssertMatchesSlow(float[] clip)
    {
        var fast = new Mfcc().Compute(clip);
        var slow = SlowMfcc(clip);
        Assert.That(fast, Has.Length.EqualTo(32 * 32));
        double worst = 0;
        for (int j = 0; j < 32; j++)
        {
            for (int t = 0; t < 32; t++)
            {
                worst = Math.Max(worst, Math.Abs(fast[j * 32 + t] - slow[j, t]));
            }
        }
        Assert.That(worst, Is.LessThan(1e-3), "largest difference from the slow reference");
    }

    [Test]
    public void Tone440MatchesSlowReference() => AssertMatchesSlow(Tone(16000, (440, 0.5)));

    [Test]
    public void MixOf1kAnd3kMatchesSlowReference() => AssertMatchesSlow(Tone(16000, (1000, 0.4), (3000, 0.2)));

    [Test]
    public void ShortNoisyClipMatchesSlowReference()
    {
        var random = new Random(5);
        var clip = Tone(9000, (700, 0.3));
        for (int i = 0; i < clip.Length; i++)
        {
            clip[i] += (float)(random.NextDouble() - 0.5) * 0.1f;
        }
        AssertMatchesSlow(clip);
    }

    [TestCase(300.0)]
    [TestCase(1000.0)]
    [TestCase(2500.0)]
    [TestCase(6000.0)]
    public void PureToneEnergyPeaksInItsFilter(double frequency)
    {
        var mfcc = new Mfcc();
        var energies = mfcc.MelEnergies(Tone(16000, (frequency, 0.5)));
        Assert.That(energies, Has.Length.EqualTo(40 * 32));
        const int frame = 16;
        int best = 0;
        for (int m = 1; m < 40; m++)
        {
            if (energies[m * 32 + frame] > energies[best * 32 + frame])
            {
                best = m;
            }
        }
        var (lower, center, upper) = mfcc.FilterEdges(best);
        Assert.That(frequency, Is.GreaterThan(lower).And.LessThan(upper), $"filter {best}: {lower:F0}..{upper:F0} Hz");
        // The winner is the filter whose peak is nearest the tone in mel.
        int nearest = Enumerable.Range(0, 40)
            .MinBy(m => Math.Abs(Mfcc.HzToMel(mfcc.FilterEdges(m).Center) - Mfcc.HzToMel(frequency)));
        Assert.That(best, Is.EqualTo(nearest), $"peak {center:F0} Hz");
    }

    [Test]
    public void SilenceGivesTheLogFloorPattern()
    {
        var output = new Mfcc().Compute(new float[16000]);
        double row0 = Math.Sqrt(40) * Math.Log(1e-6);
        for (int t = 0; t < 32; t++)
        {
            Assert.That(output[t], Is.EqualTo(row0).Within(1e-4));
            for (int j = 1; j < 32; j++)
            {
                Assert.That(output[j * 32 + t], Is.EqualTo(0).Within(1e-4), $"coefficient {j} frame {t}");
            }
        }
    }

    [Test]
    public void ShortClipsArePaddedAndLongOnesCut()
    {
        var mfcc = new Mfcc();
        var tone = Tone(20000, (500, 0.5));
        var padded = new float[16000];
        Array.Copy(tone, padded, 10000);
        Assert.That(mfcc.Compute(tone.AsSpan(0, 10000)), Is.EqualTo(mfcc.Compute(padded)));
        Assert.That(mfcc.Compute(tone), Is.EqualTo(mfcc.Compute(tone.AsSpan(0, 16000))));
        Assert.That(mfcc.Compute(tone), Is.Not.EqualTo(mfcc.Compute(padded)));
        Assert.That(mfcc.OutputLength, Is.EqualTo(1024));
    }

    [Test]
    public void MelScaleIsHtk()
    {
        Assert.That(Mfcc.HzToMel(700), Is.EqualTo(2595 * Math.Log10(2)).Within(1e-9));
        Assert.That(Mfcc.MelToHz(Mfcc.HzToMel(1234.5)), Is.EqualTo(1234.5).Within(1e-9));
        var mfcc = new Mfcc();
        Assert.That(mfcc.FilterEdges(0).Lower, Is.EqualTo(20).Within(1e-9));
        Assert.That(mfcc.FilterEdges(39).Upper, Is.EqualTo(8000).Within(1e-6));
    }

    [Test]
    public void InconsistentOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new Mfcc(new MfccOptions(CoefficientCount: 41)));
        Assert.Throws<ArgumentException>(() => new Mfcc(new MfccOptions(FftSize: 512)));
        Assert.Throws<ArgumentException>(() => new Mfcc(new MfccOptions(HighFrequency: 9000)));
        Assert.Throws<ArgumentException>(() => new Mfcc().Compute(new float[100], new float[10]));
    }
}
