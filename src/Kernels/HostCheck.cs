using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// Host-side validation done before every launch: a bad index inside a kernel kills the whole
/// process, so every length and shape is checked here and reported as an exception instead.
/// </summary>
public static class HostCheck
{
    /// <summary>Throws unless <paramref name="view"/> holds at least <paramref name="needed"/> elements.</summary>
    public static void Length<T>(ArrayView<T> view, long needed, string what)
        where T : unmanaged
    {
        if (view.Length < needed)
        {
            throw new ArgumentException($"{what}: needs {needed} elements, view has {view.Length}");
        }
    }

    /// <summary>Throws unless both views have the same length.</summary>
    public static void SameLength<TA, TB>(ArrayView<TA> a, ArrayView<TB> b, string what)
        where TA : unmanaged
        where TB : unmanaged
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"{what}: lengths differ ({a.Length} vs {b.Length})");
        }
    }

    /// <summary>Throws unless <paramref name="value"/> is positive.</summary>
    public static void Positive(long value, string what)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{what} must be positive, got {value}");
        }
    }

    /// <summary>Throws unless the element count fits a 32-bit kernel index.</summary>
    public static int Count(long n, string what)
    {
        if (n < 0 || n > int.MaxValue)
        {
            throw new ArgumentException($"{what}: {n} elements do not fit a 32-bit kernel index");
        }
        return (int)n;
    }
}
