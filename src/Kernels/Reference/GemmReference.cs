namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="GemmKernels"/>: the truth tests compare against.</summary>
public static class GemmReference
{
    /// <summary>
    /// Row-major <c>C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C[m, n]</c> with the same
    /// layout rules as <see cref="GemmKernels.Run"/>; sums in double; beta = 0 ignores C's contents.
    /// </summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += (double)av * bv;
                }
                double value = alpha * sum;
                if (beta != 0f)
                {
                    value += (double)beta * c[i * ldc + j];
                }
                c[i * ldc + j] = (float)value;
            }
        }
    }
}
