namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop references for <see cref="UplinkKernels"/>.</summary>
public static class UplinkReference
{
    /// <summary>Entries that are not zero.</summary>
    public static long CountNonZero(float[] x) => x.LongCount(v => v != 0f);
}
