using System.Runtime.InteropServices;

namespace ZeroFL.Perf;

/// <summary>
/// OpenBLAS <c>cblas_sgemm</c> through P/Invoke into <c>libopenblas.so.0</c> (Debian package
/// <c>libopenblas0</c>; <c>perf/run.sh</c> installs it). The dense reference every benchmark is
/// compared against.
/// </summary>
internal static unsafe partial class OpenBlas
{
    private const string Library = "libopenblas.so.0";
    private const int RowMajor = 101;
    private const int NoTrans = 111;
    private const int Trans = 112;

    /// <summary>Throws with a one-line hint if the library cannot be loaded; sets its thread count.</summary>
    public static string Initialise(int threads)
    {
        try
        {
            openblas_set_num_threads(threads);
            return $"OpenBLAS {Marshal.PtrToStringAnsi(openblas_get_config())}, {openblas_get_num_threads()} threads";
        }
        catch (DllNotFoundException e)
        {
            throw new InvalidOperationException(
                $"{Library} not found ({e.Message.Split('\n')[0]}); install it with 'apt-get install -y libopenblas0' or run perf/run.sh");
        }
    }

    /// <summary>Row-major C[m, n] = alpha * op(A) * op(B) + beta * C.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            cblas_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }

    [LibraryImport(Library)]
    private static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library)]
    private static partial void openblas_set_num_threads(int threads);

    [LibraryImport(Library)]
    private static partial int openblas_get_num_threads();

    [LibraryImport(Library)]
    private static partial IntPtr openblas_get_config();
}
