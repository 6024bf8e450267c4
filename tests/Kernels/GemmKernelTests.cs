using ILGPU;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class GemmKernelTests(string device) : DeviceTest(device)
{
    /// <summary>Odd sizes, exact micro-tiles (6x16), and sizes one past the CPU micro-tile, K block (256), M block (144) and N block (4096 per thread).</summary>
    private static readonly int[][] Sizes =
    [
        [1, 1, 1],
        [7, 13, 5],
        [65, 129, 33],
        [6, 16, 256],
        [7, 17, 257],
        [150, 33, 513],
        [64, 65, 64],
        [13, 8209, 7],
    ];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var size in Sizes)
        {
            foreach (bool transA in new[] { false, true })
            {
                foreach (bool transB in new[] { false, true })
                {
                    yield return new TestCaseData(transA, transB, size[0], size[1], size[2]);
                }
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(bool transA, bool transB, int m, int n, int k)
    {
        CheckAgainstReference(transA, transB, m, n, k, 1f, 0f, 0, 0, 0, nanC: true);
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void AlphaBetaAndPaddedLeadingDimensions(bool transA, bool transB)
    {
        CheckAgainstReference(transA, transB, 37, 45, 70, 0.5f, -1.5f, 3, 5, 7, nanC: false);
    }

    [Test]
    public void BetaZeroOverwritesNaNAndPaddingIsNotTouched()
    {
        CheckAgainstReference(false, false, 20, 35, 9, 2f, 0f, 2, 1, 4, nanC: true);
    }

    [Test]
    public void ShapeErrorsAreRejectedOnTheHost()
    {
        var gemm = Device.Kernels.Gemm;
        var a = Zeros(6);
        var b = Zeros(12);
        var c = Zeros(8);
        Assert.DoesNotThrow(() => gemm.Run(false, false, 2, 4, 3, 1f, a, 3, b, 4, 0f, c, 4));
        var ex = Assert.Throws<ArgumentException>(() => gemm.Run(false, false, 2, 4, 3, 1f, a, 2, b, 4, 0f, c, 4));
        Assert.That(ex!.Message, Does.Contain("gemm A"));
        Assert.Throws<ArgumentException>(() => gemm.Run(false, false, 2, 4, 4, 1f, a, 4, b, 4, 0f, c, 4));
        Assert.Throws<ArgumentException>(() => gemm.Run(false, true, 2, 4, 3, 1f, a, 3, b, 4, 0f, c, 4));
        Assert.Throws<ArgumentException>(() => gemm.Run(false, false, 2, 4, 3, 1f, a, 3, b, 4, 0f, c, 5));
        Assert.Throws<ArgumentException>(() => gemm.Run(false, false, 0, 4, 3, 1f, a, 3, b, 4, 0f, c, 4));
        Assert.Throws<ArgumentException>(() => gemm.Run(true, false, 2, 4, 3, 1f, a, 1, b, 4, 0f, c, 4));
    }

    /// <summary>
    /// The CPU GEMM's micro-kernels (6x16 Vector256, 6x16 and 6x32 Vector512, chosen by the host)
    /// all compute each element as one chain of fused multiply-adds per K block of the packed GEMM
    /// (blocks of at most 256, split evenly), then alpha * sum + beta * C: the same bits whichever
    /// runs. Sizes cover full 6x32 tiles, a lone 16-column panel, partial rows and columns, and
    /// several K blocks.
    /// </summary>
    [TestCase(12, 64, 300, 1f, 0f)]
    [TestCase(13, 48, 513, 1f, 1f)]
    [TestCase(7, 37, 40, 0.5f, -1.5f)]
    [TestCase(150, 96, 257, 1f, 1f)]
    public void PackedGemmIsBitExactToItsFusedMultiplyAddOrder(int m, int n, int k, float alpha, float beta)
    {
        if (!Device.Kernels.Launch.IsCpu)
        {
            Assert.Ignore("the tiled GPU kernel sums in its own order");
        }
        var a = Numerics.Random(m * k, 21);
        var b = Numerics.Random(k * n, 22);
        var c0 = Numerics.Random(m * n, 23);
        var c = Upload(c0);
        Device.Kernels.Gemm.Run(false, false, m, n, k, alpha, Upload(a), k, Upload(b), n, beta, c, n);
        var actual = Download(c);
        int blocks = (k + 255) / 256;
        int step = (k + blocks - 1) / blocks;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float value = c0[i * n + j];
                for (int k0 = 0; k0 < k; k0 += step)
                {
                    float sum = 0f;
                    for (int kk = k0; kk < Math.Min(k, k0 + step); kk++)
                    {
                        sum = MathF.FusedMultiplyAdd(a[i * k + kk], b[kk * n + j], sum);
                    }
                    float blockBeta = k0 == 0 ? beta : 1f;
                    value = blockBeta == 0f ? alpha * sum : MathF.FusedMultiplyAdd(blockBeta, value, alpha * sum);
                }
                Assert.That(BitConverter.SingleToInt32Bits(actual[i * n + j]), Is.EqualTo(BitConverter.SingleToInt32Bits(value)),
                    $"C[{i}, {j}] of {m}x{n}x{k}: {actual[i * n + j]} vs {value}");
            }
        }
    }

    /// <summary>
    /// Runs one GEMM with leading dimensions padded by the given amounts (padding filled with NaN,
    /// so reading it poisons the result; C's padding must come back unchanged); with
    /// <paramref name="nanC"/> C starts as NaN garbage.
    /// </summary>
    private void CheckAgainstReference(bool transA, bool transB, int m, int n, int k, float alpha, float beta,
        int padA, int padB, int padC, bool nanC)
    {
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        int lda = aCols + padA, ldb = bCols + padB, ldc = n + padC;
        var a = Padded(aRows, aCols, lda, 11);
        var b = Padded(bRows, bCols, ldb, 12);
        var c0 = Padded(m, n, ldc, 13);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (nanC)
                {
                    c0[i * ldc + j] = float.NaN;
                }
            }
        }
        var c = Upload(c0);
        Device.Kernels.Gemm.Run(transA, transB, m, n, k, alpha, Upload(a), lda, Upload(b), ldb, beta, c, ldc);
        var expected = (float[])c0.Clone();
        GemmReference.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
        var actual = Download(c);
        var expectedBody = new List<float>();
        var actualBody = new List<float>();
        for (int i = 0; i < expected.Length; i++)
        {
            if (i % ldc >= n)
            {
                Assert.That(BitConverter.SingleToInt32Bits(actual[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected[i])), $"C padding element {i} changed");
                continue;
            }
            expectedBody.Add(expected[i]);
            actualBody.Add(actual[i]);
        }
        Numerics.AssertClose(expectedBody.ToArray(), actualBody.ToArray(), 1e-4f, 2e-6f * k + 1e-5f,
            $"gemm {(transA ? "T" : "N")}{(transB ? "T" : "N")} {m}x{n}x{k}");
    }

    /// <summary>A [rows, ld] row-major buffer: random in the first <paramref name="cols"/> columns, NaN in the padding.</summary>
    private static float[] Padded(int rows, int cols, int ld, int seed)
    {
        var values = Numerics.Random(rows * ld, seed);
        for (int i = 0; i < values.Length; i++)
        {
            if (i % ld >= cols)
            {
                values[i] = float.NaN;
            }
        }
        return values;
    }
}
