using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>Element-wise max(x, 0); same shape as x.</summary>
    public static Tensor Relu(Tape tape, Tensor x)
    {
        var k = tape.Kernels;
        var y = tape.NewTensor(x.Shape, x.RequiresGrad);
        using (tape.Measure(OpKinds.Relu, Pass.Forward))
        {
            k.Activation.ReluForward(x.Data, y.Data);
        }
        if (x.RequiresGrad)
        {
            string scope = tape.Scope;
            tape.Record(y, () =>
            {
                if (y.HasGrad)
                {
                    using var backward = tape.Measure(OpKinds.Relu, Pass.Backward, scope);
                    k.Activation.ReluBackward(y.Data, y.Grad, tape.GradOf(x));
                }
            }).Reads(y);
        }
        return y;
    }

    /// <summary>Residual add a + b of two tensors of the same shape.</summary>
    public static Tensor Add(Tape tape, Tensor a, Tensor b)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
        {
            throw new ArgumentException($"add: shapes differ ({a} vs {b})");
        }
        var k = tape.Kernels;
        var y = tape.NewTensor(a.Shape, a.RequiresGrad || b.RequiresGrad);
        using (tape.Measure(OpKinds.Add, Pass.Forward))
        {
            k.Activation.Add(a.Data, b.Data, y.Data);
        }
        if (y.RequiresGrad)
        {
            string scope = tape.Scope;
            tape.Record(y, () =>
            {
                if (!y.HasGrad)
                {
                    return;
                }
                using var backward = tape.Measure(OpKinds.Add, Pass.Backward, scope);
                if (a.RequiresGrad)
                {
                    k.Activation.Axpy(y.Grad, tape.GradOf(a), 1f);
                }
                if (b.RequiresGrad)
                {
                    k.Activation.Axpy(y.Grad, tape.GradOf(b), 1f);
                }
            });
        }
        return y;
    }

    /// <summary>[batch, ...] to [batch, rest]: a view sharing data and gradient, no kernel.</summary>
    public static Tensor Flatten(Tensor x)
    {
        int batch = x.Dim(0);
        return x.Reshape(batch, (int)(x.Length / Math.Max(1, batch)));
    }
}
