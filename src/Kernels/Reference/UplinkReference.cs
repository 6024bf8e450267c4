namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop references for <see cref="UplinkKernels"/>.</summary>
public static class UplinkReference
{
    /// <summary>output[i] = mask[i] != 0 ? values[i] : 0.</summary>
    public static float[] KeepWhereNonZero(float[] mask, float[] values) =>
        mask.Select((m, i) => m != 0f ? values[i] : 0f).ToArray();

    /// <summary>Entries that are not zero.</summary>
    public static long CountNonZero(float[] x) => x.LongCount(v => v != 0f);
}
