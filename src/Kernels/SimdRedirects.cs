using System.Reflection;
using ILGPU;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.IR;
using ILGPU.IR.Intrinsics;

namespace ZeroFL.Kernels;

/// <summary>
/// Registers, for the PTX and OpenCL backends, a redirect from every <see cref="SimdHelperAttribute"/>
/// method to its scalar fallback. The CPU accelerator runs kernels as ordinary .NET code and so
/// calls the SIMD version directly.
/// </summary>
public static class SimdRedirects
{
    /// <summary>Every (SIMD helper, scalar fallback) pair in this assembly.</summary>
    public static IReadOnlyList<(MethodInfo Simd, MethodInfo Scalar)> Pairs { get; } = FindPairs();

    /// <summary>Adds the redirects to a context under construction.</summary>
    public static Context.Builder RegisterSimdRedirects(this Context.Builder builder)
    {
        var manager = builder.GetIntrinsicManager();
        foreach (var (simd, scalar) in Pairs)
        {
            manager.RegisterMethod(simd, new PTXIntrinsic(scalar, IntrinsicImplementationMode.Redirect));
            manager.RegisterMethod(simd, new CLIntrinsic(scalar, IntrinsicImplementationMode.Redirect));
        }
        return builder;
    }

    private static List<(MethodInfo, MethodInfo)> FindPairs()
    {
        const BindingFlags flags = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        var pairs = new List<(MethodInfo, MethodInfo)>();
        foreach (var type in typeof(SimdRedirects).Assembly.GetTypes())
        {
            foreach (var method in type.GetMethods(flags))
            {
                var attribute = method.GetCustomAttribute<SimdHelperAttribute>();
                if (attribute is null)
                {
                    continue;
                }
                var parameterTypes = method.GetParameters().Select(p => p.ParameterType).ToArray();
                var scalar = type.GetMethod(attribute.ScalarFallback, flags, parameterTypes)
                    ?? throw new InvalidOperationException(
                        $"{type.Name}.{method.Name}: scalar fallback {attribute.ScalarFallback} with the same signature not found");
                pairs.Add((method, scalar));
            }
        }
        return pairs;
    }
}
